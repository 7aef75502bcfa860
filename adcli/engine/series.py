"""Taylor-series arithmetic and the per-op series rules of the op table.

A rule is ``rule(F, out, *inputs, **params) -> list`` (like a VJP without
``g``). Each input is a :class:`Jet` ``[c0, c1, ..., cK]``: ``c0`` is the
input's value when the node saved it (a tensor or a number; the same values
the VJPs see, still connected to ``x`` through the original graph) and
``None`` otherwise; ``None`` in ``c1..cK`` is an exact zero. ``out`` is the
result's value (only with ``save_output``), ``F`` the recorded ops. The rule
returns the result's ``[_, c1, ..., cK]`` (item 0 is ignored). Linear ops map
every coefficient; nonlinear ones only ever need the values their VJPs need,
so the graph always holds what a rule asks for.

The driver that pushes series through a recorded graph is
:mod:`adcli.engine.taylor`; the op table (:mod:`adcli.engine.ops`) names each
op's rule from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError

_NUMBER = (int, float)


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


# ----- remainder and index assignment (the language's % and a[i] = v) ----------------------------


def remainder(F, out, a, b):
    """``a % b = a - floor(a / b) * b``, the floor locally constant."""
    q = F.floor_divide(a[0], b[0])
    return [None] + [_minus(a[k], None if b[k] is None else q * b[k]) for k in range(1, len(a))]


def copy_slices(F, out, a, b, key):
    """Linear in both: the value's coefficients written into the tensor's."""
    result = [None]
    for k in range(1, len(a)):
        if a[k] is None and b[k] is None:
            result.append(None)
            continue
        base = a[k] if a[k] is not None else a[0] * 0.0
        result.append(F.copy_slices(base, 0.0 if b[k] is None else b[k], key=key))
    return result
