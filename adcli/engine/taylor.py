"""Taylor mode: nth-order derivatives in polynomial time.

The language's nth derivative is nested: ``D1 = grad(sum(y), x)`` and
``Dk = grad(sum(D(k-1)), x)``. Differentiating a derivative graph again and
again makes it grow exponentially with the order. This module gets the same
numbers another way. With ``v = ones_like(x)``::

    Dk = grad_x of the (k-1)th directional derivative of sum(y) along v
       = grad_x of (k-1)! * c[k-1],   where  sum(y(x + t v)) = sum_k c[k] t^k

(for an elementwise ``y`` that is ``y^(k)(x)`` elementwise; for sums, matrix
products and broadcasting it is still the nested method's answer, since
``sum(D(k-1))`` *is* that directional derivative.) So we push a truncated
Taylor series -- a :class:`Jet` -- through the ops that made ``y`` from ``x``,
re-walking the recorded graph node by node with each op's ``taylor`` rule from
the table in :mod:`adcli.engine.ops`. The rules are written with engine ops,
so every coefficient is itself a recorded tensor of ``x``; one ordinary
reverse pass per order finishes the job. Degree ``K`` costs ``O(K^2)`` array
ops (Cauchy products and the usual recurrences), not ``O(2^K)``.

A rule is ``rule(F, out, *inputs, **params) -> list`` (like a VJP without
``g``). Each input is a :class:`Jet` ``[c0, c1, ..., cK]``: ``c0`` is the
input's value when the node saved it (a tensor or a number; the same values
the VJPs see, still connected to ``x`` through the original graph) and
``None`` otherwise; ``None`` in ``c1..cK`` is an exact zero. ``out`` is the
result's value (only with ``save_output``), ``F`` the recorded ops. The rule
returns the result's ``[_, c1, ..., cK]`` (item 0 is ignored). Linear ops map
every coefficient; nonlinear ones only ever need the values their VJPs need,
so the graph always holds what a rule asks for.

This module imports only :mod:`adcli.engine.tensor` at the top (the op table
imports the rules from here); the entry points reach :mod:`autodiff` lazily.
"""

from __future__ import annotations

import math
import sys
import time
import tracemalloc
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from adcli.engine.tensor import (
    BACKWARD_TWICE,
    STATE,
    AccumulateGrad,
    Tensor,
    check_differentiable,
    enable_grad,
    grad_node,
    make_result,
    no_grad,
)
from adcli.errors import AdcliError

_NUMBER = (int, float)

#: orders below this use the nested method under ``method="auto"``
AUTO_FROM_ORDER = 3


class Jet(list):
    """A truncated Taylor series ``[c0, c1, ..., cK]`` of one tensor along ``t``.

    ``c0`` is the value (or ``None`` when unknown: the rule did not need it);
    ``None`` among ``c1..cK`` is an exact zero, so sparse series stay cheap.
    """

    __slots__ = ()

    @property
    def degree(self) -> int:
        return len(self) - 1

    def nonzero(self) -> list:
        """The indices ``k >= 1`` whose coefficient is not an exact zero."""
        return [k for k in range(1, len(self)) if self[k] is not None]


class NoTaylorRule(AdcliError):
    """An op on the path from ``x`` to ``y`` has no Taylor rule."""

    def __init__(self, op_names) -> None:
        names = ", ".join(sorted(op_names))
        super().__init__(
            "value",
            f"no Taylor rule for {names}: the nth derivative cannot use method='taylor'",
            hint="use method='nested' (or 'auto', which falls back to it)",
        )
        self.op_names = frozenset(op_names)


# ----- arithmetic on coefficients where None is an exact zero -----------------------------------


def _plus(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _minus(a, b):
    if b is None:
        return a
    if a is None:
        return -b
    return a - b


def _scaled(a, s):
    if a is None:
        return None
    return a if s == 1 else a * s


def _total(terms):
    """The sum of the terms that are not None (None when all are)."""
    acc = None
    for t in terms:
        if t is not None:
            acc = t if acc is None else acc + t
    return acc


def _cauchy(a, b, k: int, product=None, lo: int = 0):
    """Coefficient ``k`` of the product of two series: sum of ``a[j] * b[k-j]``, ``lo <= j <= k``.

    ``product`` replaces ``*`` for bilinear ops (``F.mm``...).
    """
    acc = None
    for j in range(lo, k + 1):
        u = a[j]
        w = b[k - j]
        if u is None or w is None:
            continue
        term = u * w if product is None else product(u, w)
        acc = term if acc is None else acc + term
    return acc


def _square_coefficient(y, k: int):
    """Coefficient ``k`` of ``y * y``, using the symmetry (half the products)."""
    acc = None
    for i in range((k + 1) // 2):
        u = y[i]
        w = y[k - i]
        if u is not None and w is not None:
            acc = u * w if acc is None else acc + u * w
    if acc is not None:
        acc = acc * 2.0
    if k % 2 == 0 and y[k // 2] is not None:
        acc = _plus(acc, y[k // 2] * y[k // 2])
    return acc


def _weighted_by_index(a) -> dict:
    """``{j: j * a[j]}`` for the nonzero ``a[j]``, ``j >= 1`` (the derivative's coefficients)."""
    return {j: _scaled(a[j], float(j)) for j in a.nonzero()}


def _zero_result(degree: int) -> list:
    return [None] * (degree + 1)


# ----- the rules: linear ops -------------------------------------------------------------------


def add(F, out, a, b):
    return [None] + [_plus(a[k], b[k]) for k in range(1, len(a))]


def sub(F, out, a, b):
    return [None] + [_minus(a[k], b[k]) for k in range(1, len(a))]


def neg(F, out, a):
    return [None] + [None if c is None else -c for c in a[1:]]


def linear_map(op_name: str) -> Callable:
    """The rule of an op that is linear in its one input: apply it to every coefficient."""

    def rule(F, out, a, **params):
        f = getattr(F, op_name)
        return [None] + [None if c is None else f(c, **params) for c in a[1:]]

    rule.__name__ = rule.__qualname__ = f"taylor_{op_name}"
    return rule


def bilinear(op_name: str) -> Callable:
    """The rule of a product (``mul``, ``mm``, ``dot``...): a Cauchy product of the series."""

    def rule(F, out, a, b):
        product = None if op_name == "mul" else getattr(F, op_name)
        return [None] + [_cauchy(a, b, k, product) for k in range(1, len(a))]

    rule.__name__ = rule.__qualname__ = f"taylor_{op_name}"
    return rule


mul = bilinear("mul")


def where(F, out, cond, a, b):
    mask = cond[0]
    result = [None]
    for k in range(1, len(a)):
        if a[k] is None and b[k] is None:
            result.append(None)
        else:
            result.append(
                F.where(mask, 0.0 if a[k] is None else a[k], 0.0 if b[k] is None else b[k])
            )
    return result


def abs(F, out, a):  # the op's name (shadows the builtin here only)
    sign = F.sign(a[0])
    return [None] + [None if c is None else c * sign for c in a[1:]]


def relu(F, out, a):
    mask = F.positive(out)
    return [None] + [None if c is None else c * mask for c in a[1:]]


# ----- the rules: quotients and the usual recurrences ----------------------------------------


def div(F, out, a, b):
    """c = a / b:  c[k] = (a[k] - sum_{j>=1} b[j] c[k-j]) / b[0]."""
    b0 = b[0]
    nz_b = b.nonzero()
    c = [a[0] / b0 if nz_b else None]
    for k in range(1, len(a)):
        s = _total(b[j] * c[k - j] for j in nz_b if j <= k and c[k - j] is not None)
        num = _minus(a[k], s)
        c.append(None if num is None else num / b0)
    return c


def _exp_series(a, y0) -> list:
    """y = exp(a) from y[0]:  y[k] = (1/k) sum_j (j a[j]) y[k-j]."""
    ja = _weighted_by_index(a)
    y = [y0]
    for k in range(1, len(a)):
        s = _total(ja[j] * y[k - j] for j in ja if j <= k and y[k - j] is not None)
        y.append(_scaled(s, 1.0 / k))
    return y


def exp(F, out, a):
    return _exp_series(a, out)


def _log_series(a, y0) -> list:
    """y = log(a):  y[k] = (a[k] - (1/k) sum_{1<=j<k} a[j] (k-j) y[k-j]) / a[0]."""
    a0 = a[0]
    nz = a.nonzero()
    y = [y0]
    iy = {}  # i * y[i], made once each
    for k in range(1, len(a)):
        s = _total(iy[k - j] * a[j] for j in nz if j < k and (k - j) in iy)
        num = _minus(a[k], _scaled(s, 1.0 / k))
        yk = None if num is None else num / a0
        y.append(yk)
        if yk is not None:
            iy[k] = _scaled(yk, float(k))
    return y


def log(F, out, a):
    return _log_series(a, None)


def _power_recurrence(a, a0, y0, p) -> list:
    """y = a^p (a[0] != 0) from a * y' = p * a' * y.

    k a0 y[k] = sum_{j>=1} ((p+1) j - k) a[j] y[k-j]. ``p`` is a number or a
    tensor that does not vary with ``t``. Costs O(K * nonzeros of a).
    """
    nz = a.nonzero()
    y = [y0]
    scalar = isinstance(p, _NUMBER)
    p1 = p + 1.0
    for k in range(1, len(a)):
        if scalar:
            # Terms whose weight (p+1) j / k - 1 vanishes are skipped, not multiplied by 0.
            s = _total(
                _scaled(a[j] * y[k - j], (p1 * j) / k - 1.0)
                for j in nz
                if j <= k and y[k - j] is not None and p1 * j != k
            )
        else:
            pairs = [(j, a[j] * y[k - j]) for j in nz if j <= k and y[k - j] is not None]
            if not pairs:
                y.append(None)
                continue
            weighted = _total(_scaled(t, float(j)) for j, t in pairs)
            s = _minus(p1 * weighted * (1.0 / k), _total(t for _, t in pairs))
        y.append(None if s is None else s / a0)
    return y


def _jet_product(a, b) -> Jet:
    """The full product series, value included."""
    first = None if a[0] is None or b[0] is None else a[0] * b[0]
    return Jet([first] + [_cauchy(a, b, k) for k in range(1, len(a))])


def _jet_square(a) -> Jet:
    first = None if a[0] is None else a[0] * a[0]
    return Jet([first] + [_square_coefficient(a, k) for k in range(1, len(a))])


def _integer_power(a, p: int) -> Jet:
    """a^p for a whole p >= 1 by repeated squaring: exact where a[0] == 0, too."""
    result = None
    base = a
    while True:
        if p & 1:
            result = base if result is None else _jet_product(result, base)
        p >>= 1
        if not p:
            return result
        base = _jet_square(base)


#: whole exponents up to this use repeated squaring; larger ones the recurrence
_SQUARING_UP_TO = 8


def _is_whole(p) -> bool:
    return isinstance(p, int) or (isinstance(p, float) and p.is_integer())


def _any_zero(value) -> bool:
    data = value._data if isinstance(value, Tensor) else value
    return bool((data == 0).any()) if hasattr(data, "any") else data == 0


def pow(F, out, a, b):  # the op's name (shadows the builtin here only)
    """a^b: a whole or real exponent, a tensor exponent, or exp(b log a) when b varies.

    Serves both ``pow`` (constant exponent; the result is not saved, so it is
    recomputed from the saved base when a recurrence needs it) and ``pow_tensor``.
    """
    degree = a.degree
    a0, b0 = a[0], b[0]
    if out is None and not (isinstance(a0, _NUMBER) and isinstance(b0, _NUMBER)):
        out = a0**b0
    if b.nonzero():
        # The exponent varies with t: a^b = exp(b * log a).
        if isinstance(a0, _NUMBER):
            if a0 == 0:
                return _zero_result(degree)
            log_a = Jet([math.log(a0)] + [None] * degree)
        else:
            log_a = Jet(_log_series(a, F.log(a0)))
        exponent = Jet([None] + [_cauchy(b, log_a, k) for k in range(1, degree + 1)])
        return _exp_series(exponent, out)
    if not a.nonzero():
        return _zero_result(degree)
    if isinstance(b0, _NUMBER):
        if b0 == 0:
            return _zero_result(degree)
        if b0 == 1:
            return [None] + list(a[1:])
        if _is_whole(b0) and b0 > 1 and (b0 <= _SQUARING_UP_TO or _any_zero(a0)):
            return _integer_power(a, int(b0))
    return _power_recurrence(a, a0, out, b0)


def sqrt(F, out, a):
    """y = sqrt(a), from y[0] (the input is not saved; a[0] = y[0]^2 where needed)."""
    nz = a.nonzero()
    degree = a.degree
    if 3 * len(nz) < degree:
        # A sparse input (say x^2 + 1): the power recurrence is O(K) here.
        return _power_recurrence(a, out * out, out, 0.5)
    y = [out]
    twice = out * 2.0
    for k in range(1, degree + 1):
        s = None
        for i in range(1, (k + 1) // 2):
            u, w = y[i], y[k - i]
            if u is not None and w is not None:
                s = u * w if s is None else s + u * w
        if s is not None:
            s = s * 2.0
        if k % 2 == 0 and y[k // 2] is not None:
            s = _plus(s, y[k // 2] * y[k // 2])
        num = _minus(a[k], s)
        y.append(None if num is None else num / twice)
    return y


def _sin_cos_series(a, s0, c0):
    """s' = c a', c' = -s a':  s[k] = (1/k) sum j a[j] c[k-j], c[k] = -(1/k) sum j a[j] s[k-j]."""
    ja = _weighted_by_index(a)
    s = [s0]
    c = [c0]
    for k in range(1, len(a)):
        sk = _total(ja[j] * c[k - j] for j in ja if j <= k and c[k - j] is not None)
        ck = _total(ja[j] * s[k - j] for j in ja if j <= k and s[k - j] is not None)
        s.append(_scaled(sk, 1.0 / k))
        c.append(_scaled(ck, -1.0 / k))
    return s, c


def sin(F, out, a):
    return _sin_cos_series(a, F.sin(a[0]), F.cos(a[0]))[0]


def cos(F, out, a):
    return _sin_cos_series(a, F.sin(a[0]), F.cos(a[0]))[1]


def _riccati(a, y0, z0, z_next):
    """y' = z a' where z is a polynomial in y (tanh, sigmoid): y[k] = (1/k) sum j a[j] z[k-j]."""
    ja = _weighted_by_index(a)
    y = [y0]
    z = [z0]
    degree = a.degree
    for k in range(1, degree + 1):
        s = _total(ja[j] * z[k - j] for j in ja if j <= k and z[k - j] is not None)
        y.append(_scaled(s, 1.0 / k))
        if k < degree:
            z.append(z_next(y, k))
    return y


def tanh(F, out, a):
    """tanh' = 1 - y^2."""
    return _riccati(a, out, 1.0 - out * out, lambda y, k: _scaled(_square_coefficient(y, k), -1.0))


def sigmoid(F, out, a):
    """sigmoid' = y (1 - y) = y - y^2."""
    return _riccati(a, out, out * (1.0 - out), lambda y, k: _minus(y[k], _square_coefficient(y, k)))


# ----- the walk over a recorded graph ------------------------------------------------------------


def _path(y: Tensor, x: Tensor):
    """(root, source, nodes from the source up to the root in forward order) or None."""
    from adcli.engine.autodiff import _topological  # lazily: autodiff imports the table

    source = grad_node(x)
    root = grad_node(y)
    if source is None or root is None:
        return None
    if root is source:
        return root, source, []
    order, needed = _topological([root], {source})
    if source not in needed:
        return None
    forward = [n for n in reversed(order) if n is not source]
    return root, source, forward


def missing_rules(y: Tensor, x: Tensor) -> set:
    """Names of the ops between ``x`` and ``y`` that have no Taylor rule (empty: all do)."""
    path = _path(y, x)
    if path is None:
        return set()
    return {n.op.name for n in path[2] if type(n) is not AccumulateGrad and n.op.taylor is None}


def _wrap_output(node):
    """The node's result as a tensor on the original graph (as a create_graph backward does)."""
    if node.out_data is None:
        return None
    t = make_result(node.out_data, node.backend)
    t._requires_grad = True
    t._grad_fn = node
    return t


def taylor_coefficients(y: Tensor, x: Tensor, degree: int, direction: Tensor | None = None) -> list:
    """The Taylor coefficients ``[c0, ..., cK]`` of ``y(x + t * direction)`` at ``t = 0``.

    ``y`` must have been computed from ``x`` with recording on (``x`` requiring
    grad); ``direction`` defaults to ``ones_like(x)``. Each ``ck`` (``k >= 1``)
    is a tensor of ``y``'s shape recorded as a function of ``x`` (so it can be
    differentiated), or ``None`` for an exact zero; ``c0`` is ``y``. Raises
    :class:`NoTaylorRule` when an op on the way has no Taylor rule.
    """
    from adcli.engine.autodiff import _graph_ops  # lazily: autodiff imports the table

    if degree < 0:
        raise AdcliError("value", f"degree must be at least 0, got {degree}")
    path = _path(y, x)
    if path is None:
        return [y] + [None] * degree
    root, source, forward = path
    if direction is None:
        xp = x._backend.xp
        direction = make_result(xp.ones(x._data.shape, dtype=x._data.dtype), x._backend)
    seed = Jet([x] + ([direction] if degree >= 1 else []) + [None] * (degree - 1))
    if root is source:
        seed[0] = y
        return list(seed)
    missing = {n.op.name for n in forward if n.op.taylor is None}
    if missing:
        raise NoTaylorRule(missing)
    # How many consumers on the path still need each series (to let go of it early).
    uses: dict = {}
    for node in forward:
        for child in node.next:
            if child is not None:
                uses[child] = uses.get(child, 0) + 1
    jets = {source: seed}
    constant = [None] * degree
    F = _graph_ops()
    with enable_grad():
        for node in forward:
            if node.freed:
                raise AdcliError(
                    "value",
                    BACKWARD_TWICE,
                    hint="pass retain_graph=true to the backward that came first",
                )
            saved = node.saved
            inputs = []
            for i, child in enumerate(node.next):
                value = saved[i] if saved is not None else None
                series = jets.get(child) if child is not None else None
                if series is None:
                    inputs.append(Jet([value] + constant))
                    continue
                inputs.append(Jet([value] + series[1:]))
                uses[child] -= 1
                if uses[child] == 0:
                    del jets[child]
            out = _wrap_output(node) if node.op.save_output else None
            params = node.params
            if params:
                result = node.op.taylor(F, out, *inputs, **params)
            else:
                result = node.op.taylor(F, out, *inputs)
            shape = node.out_shape
            for k in range(1, degree + 1):
                c = result[k]
                if c is not None and c.shape != shape:
                    result[k] = F.expand(c, shape=shape)  # a broadcast: one full coefficient
            jets[node] = Jet(result)
    series = list(jets[root])
    series[0] = y
    return series


def _grad_of_coefficient(c, k: int, x: Tensor, create_graph: bool) -> Tensor:
    """D(k+1) = grad_x of k! * sum(c[k]): one reverse pass, seeded with k! (no sum node)."""
    from adcli.engine.autodiff import grad, zeros_like  # lazily: autodiff imports the table

    if c is None or not (c._requires_grad or c._grad_fn is not None):
        return zeros_like(x)
    xp = c._backend.xp
    try:
        factorial = float(math.factorial(k))
    except OverflowError:  # k > 170
        factorial = math.inf
    if factorial > float(np.finfo(c._data.dtype).max):
        STATE.warn(
            f"the order-{k + 1} derivative needs {k}! = {factorial:.3g}, beyond {c.dtype}'s "
            "range: expect inf/nan (use float64 for high orders)"
        )
    seed = make_result(xp.full(c._data.shape, factorial, dtype=c._data.dtype), c._backend)
    return grad(c, x, grad_outputs=seed, retain_graph=True, create_graph=create_graph)


def taylor_grads(y: Tensor, x: Tensor, order: int, create_graph: bool = False) -> list:
    """``[D1, ..., Dn]`` (the nested method's numbers) by Taylor mode.

    One series of degree ``order - 1`` is pushed through the graph between
    ``x`` and ``y``; each ``Dk`` is then one reverse pass through coefficient
    ``k - 1``. The graph of ``y`` is kept (every pass retains it). With
    ``create_graph`` the results are differentiable. Raises
    :class:`NoTaylorRule` if an op on the way has no rule.
    """
    _check_order(order)
    check_differentiable(x)
    series = taylor_coefficients(y, x, order - 1)
    return [_grad_of_coefficient(series[k], k, x, create_graph) for k in range(order)]


def taylor_grad(y: Tensor, x: Tensor, order: int, create_graph: bool = False) -> Tensor:
    """Only ``Dn``, the nth derivative: one series, one reverse pass."""
    _check_order(order)
    check_differentiable(x)
    series = taylor_coefficients(y, x, order - 1)
    return _grad_of_coefficient(series[order - 1], order - 1, x, create_graph)


def _check_order(order) -> None:
    if isinstance(order, bool) or not isinstance(order, int):
        raise AdcliError("type", f"order must be a whole number, got {order!r}")
    if order < 1:
        raise AdcliError("value", f"order must be at least 1, got {order}")


METHODS = ("auto", "taylor", "nested")


def taylor_or_none(y: Tensor, x: Tensor, order: int, method: str, create_graph: bool = False):
    """What :func:`adcli.engine.autodiff.nth_grads` runs for ``method``; ``None`` means nested.

    ``auto``: Taylor from order :data:`AUTO_FROM_ORDER` on, unless an op on the
    way has no rule, which it says with a warning before falling back.
    """
    if method not in METHODS:
        raise AdcliError("value", f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "nested" or (method == "auto" and order < AUTO_FROM_ORDER):
        return None
    _check_order(order)
    check_differentiable(x)
    if method == "auto":
        missing = missing_rules(y, x)
        if missing:
            STATE.warn(
                f"no Taylor rule for {', '.join(sorted(missing))}: the order-{order} derivative "
                "falls back to nested differentiation, whose cost grows exponentially with the order"
            )
            return None
    return taylor_grads(y, x, order, create_graph=create_graph)


# ----- checking and costing ------------------------------------------------------------------------


def _fresh_leaf(x: Tensor, dtype=None) -> Tensor:
    data = x._data if dtype is None else x._data.astype(dtype)
    leaf = Tensor(data, x._backend, requires_grad=True)
    leaf.name = x.name
    return leaf


def _nested(y, x, order, create_graph=False):
    from adcli.engine.autodiff import nth_grads  # lazily: autodiff imports the table

    return nth_grads(y, x, order, create_graph=create_graph, method="nested")


def _disagreement(a: np.ndarray, reference: np.ndarray) -> float:
    """max |a - ref| / max(1, max |ref|): absolute for small values, relative for large ones."""
    a = np.asarray(a, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if a.size == 0:
        return 0.0
    scale = max(1.0, float(np.max(np.abs(reference))))
    return float(np.max(np.abs(a - reference))) / scale


def _central_weights(m: int) -> list:
    """(offset, weight) of the central mth difference with unit step: offsets m/2 - j."""
    return [(m / 2.0 - j, (-1.0) ** j * math.comb(m, j)) for j in range(m + 1)]


def _fd_mixed(g, m: int, h: float) -> float:
    """d/ds d^m/dt^m g(s, t) at 0, by central differences with step h in both (O(h^2))."""
    total = 0.0
    for s_sign in (1.0, -1.0):
        inner = 0.0
        for offset, weight in _central_weights(m):
            inner += weight * g(s_sign * h, offset * h)
        total += s_sign * inner
    return total / (2.0 * h * h**m)


def _richardson(g, m: int, h: float, levels: int = 3) -> float:
    """Richardson's extrapolation of :func:`_fd_mixed` over h, h/2, h/4 (errors in h^2)."""
    table = [_fd_mixed(g, m, h / 2**i) for i in range(levels)]
    power = 4.0
    while len(table) > 1:
        table = [(power * table[i + 1] - table[i]) / (power - 1.0) for i in range(len(table) - 1)]
        power *= 4.0
    return table[0]


def finite_difference_grads(
    f: Callable, x: Tensor, order: int, max_elements: int = 16, directions: int = 3, seed: int = 0
) -> tuple:
    """Finite-difference estimates of ``[D1, ..., Dn]`` in float64, independent of autograd.

    Returns ``(estimates, ws, per_element)``.

    ``w . Dk = d/ds d^(k-1)/dt^(k-1) sum(f(x + t*1 + s*w))`` at 0, by central
    differences and Richardson's extrapolation. With at most ``max_elements``
    elements ``w`` runs over the unit vectors and the result is ``Dk`` itself
    (an array of ``x``'s shape); otherwise ``directions`` random unit ``w`` and
    the result is the vector of projections ``w . Dk``. Expect ~1e-8 relative
    accuracy at low orders, degrading to ~1e-3 near order 10.
    """
    base = np.asarray(x.numpy(), dtype=np.float64)
    n = base.size

    def value(point: np.ndarray) -> float:
        with no_grad():
            out = f(Tensor(x._backend.asarray(point), x._backend))
        return float(np.sum(out.numpy(), dtype=np.float64))

    if n <= max_elements:
        ws = [np.eye(n)[i].reshape(base.shape) for i in range(n)]
        per_element = True
    else:
        rng = np.random.default_rng(seed)
        ws = []
        for _ in range(directions):
            w = rng.standard_normal(base.shape)
            ws.append(w / np.linalg.norm(w))
        per_element = False
    scale = max(1.0, float(np.max(np.abs(base)))) if n else 1.0
    results = []
    for k in range(1, order + 1):
        m = k - 1
        # Balance truncation (h^6 after extrapolation) against rounding (eps / h^k).
        h = 0.5 * scale * np.finfo(np.float64).eps ** (1.0 / (k + 6))
        estimates = []
        for w in ws:

            def g(s, t, w=w):
                return value(base + t + s * w)

            estimates.append(_richardson(g, m, h))
        results.append(
            np.array(estimates).reshape(base.shape) if per_element else np.array(estimates)
        )
    return results, ws, per_element


def check_orders(f_or_y, x: Tensor, order: int) -> dict:
    """Compare Taylor mode, nested differentiation and finite differences, order by order.

    ``f_or_y`` is a callable ``f(x) -> Tensor`` built from engine ops (then
    everything runs in float64 on a fresh leaf, and finite differences by
    Richardson's extrapolation join in), or a tensor ``y`` already computed
    from ``x`` (then in ``y``'s dtype, without finite differences). Returns::

        {"dtype": "float64", "finite_differences": bool,
         "orders": [{"order": k, "taylor_vs_nested": d, "taylor_vs_fd": d | None,
                     "nested_vs_fd": d | None}, ...],
         "max_disagreement": largest d}

    where a disagreement ``d`` is ``max|a - b| / max(1, max|b|)`` and is
    ``None`` for what could not run (no Taylor rule, no callable for FD).
    """
    _check_order(order)
    if callable(f_or_y) and not isinstance(f_or_y, Tensor):
        leaf = _fresh_leaf(x, np.float64)
        y = f_or_y(leaf)
        if not isinstance(y, Tensor):
            raise AdcliError("type", "check: f must return a tensor")
    else:
        y, leaf = f_or_y, x
        check_differentiable(x)
    try:
        taylor = [d.numpy() for d in taylor_grads(y, leaf, order)]
    except NoTaylorRule:
        taylor = None
    nested = [d.numpy() for d in _nested(y, leaf, order)]
    fd = None
    if y is not f_or_y:
        fd, ws, per_element = finite_difference_grads(f_or_y, leaf, order)
        if not per_element:  # compare projections onto the same directions

            def project(ds):
                return [np.array([float(np.sum(w * d)) for w in ws]) for d in ds]

            taylor = project(taylor) if taylor is not None else None
            nested = project(nested)
    rows = []
    worst = 0.0
    for k in range(order):
        row = {
            "order": k + 1,
            "taylor_vs_nested": None if taylor is None else _disagreement(taylor[k], nested[k]),
            "taylor_vs_fd": None
            if taylor is None or fd is None
            else _disagreement(taylor[k], fd[k]),
            "nested_vs_fd": None if fd is None else _disagreement(nested[k], fd[k]),
        }
        worst = max([worst] + [v for key, v in row.items() if key != "order" and v is not None])
        rows.append(row)
    return {
        "dtype": str(leaf.dtype),
        "finite_differences": fd is not None,
        "orders": rows,
        "max_disagreement": worst,
    }


@contextmanager
def counting_nodes():
    """Count the graph nodes recorded inside the block (``with counting_nodes() as n: ...; n[0]``).

    It wraps the engine's recording step only for the block, so the per-op hot
    path pays nothing the rest of the time.
    """
    # (``adcli.engine.tensor`` the attribute is the tensor() function: take the module itself)
    tape = sys.modules["adcli.engine.tensor"]
    original = tape._record
    count = [0]

    def counted(*args):
        count[0] += 1
        return original(*args)

    tape._record = counted
    try:
        yield count
    finally:
        tape._record = original


def cost_report(y_or_f, x: Tensor, order: int, method: str = "taylor") -> list:
    """What the kth derivative costs from scratch with ``method``, for k = 1..order.

    ``y_or_f`` is a tensor ``y`` computed from ``x`` or a callable ``f(x)``
    (then each run evaluates ``f`` on a fresh leaf too). ``taylor`` computes
    only ``Dk`` (one series, one reverse pass); ``nested`` must compute
    ``D1..Dk``; ``auto`` is whichever it picks. Each order runs twice: once
    timed, once counting nodes under ``tracemalloc``. Returns
    ``[{"order": k, "nodes": recorded graph nodes, "seconds": wall time,
    "peak_bytes": peak traced memory}, ...]``.
    """
    _check_order(order)
    if method not in METHODS:
        raise AdcliError("value", f"method must be one of {', '.join(METHODS)}, got {method!r}")

    def one(k: int):
        if callable(y_or_f) and not isinstance(y_or_f, Tensor):
            leaf = _fresh_leaf(x)
            y = y_or_f(leaf)
        else:
            y, leaf = y_or_f, x
        use_taylor = method == "taylor" or (
            method == "auto" and k >= AUTO_FROM_ORDER and not missing_rules(y, leaf)
        )
        if use_taylor:
            return taylor_grad(y, leaf, k)
        return _nested(y, leaf, k)[-1]

    rows = []
    for k in range(1, order + 1):
        start = time.perf_counter()
        one(k)
        seconds = time.perf_counter() - start
        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        with counting_nodes() as count:
            one(k)
        peak = tracemalloc.get_traced_memory()[1] - base
        if not was_tracing:
            tracemalloc.stop()
        rows.append({"order": k, "nodes": count[0], "seconds": seconds, "peak_bytes": peak})
    return rows
