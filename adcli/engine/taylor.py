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

The series rules live in :mod:`adcli.engine.series`; checks against finite
differences and cost reports in :mod:`adcli.engine.diagnostics`.
"""

from __future__ import annotations

import math

import numpy as np

from adcli.engine.autodiff import grad, graph_ops, topological, where_freed, zeros_like
from adcli.engine.functional import sum as _sum
from adcli.engine.series import Jet, NoTaylorRule
from adcli.engine.tensor import (
    BACKWARD_TWICE,
    STATE,
    AccumulateGrad,
    Tensor,
    check_differentiable,
    enable_grad,
    grad_node,
    make_result,
    no_grad_fn_error,
)
from adcli.errors import AdcliError

#: orders below this use the nested method under ``method="auto"``
AUTO_FROM_ORDER = 3

__all__ = [
    "AUTO_FROM_ORDER",
    "METHODS",
    "Jet",
    "NoTaylorRule",
    "check_order",
    "missing_rules",
    "nth_grads",
    "taylor_coefficients",
    "taylor_grad",
    "taylor_grads",
    "taylor_or_none",
]


# ----- the walk over a recorded graph ------------------------------------------------------------


def _path(y: Tensor, x: Tensor):
    """(root, source, nodes from the source up to the root in forward order) or None."""
    source = grad_node(x)
    root = grad_node(y)
    if source is None or root is None:
        return None
    if root is source:
        return root, source, []
    order, needed = topological([root], {source})
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
    F = graph_ops()
    with enable_grad():
        for node in forward:
            if node.freed:
                raise AdcliError(
                    "value",
                    BACKWARD_TWICE,
                    details={"reason": "graph_freed", "freed_by": where_freed(node)},
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
    check_order(order)
    check_differentiable(x)
    series = taylor_coefficients(y, x, order - 1)
    return [_grad_of_coefficient(series[k], k, x, create_graph) for k in range(order)]


def taylor_grad(y: Tensor, x: Tensor, order: int, create_graph: bool = False) -> Tensor:
    """Only ``Dn``, the nth derivative: one series, one reverse pass."""
    check_order(order)
    check_differentiable(x)
    series = taylor_coefficients(y, x, order - 1)
    return _grad_of_coefficient(series[order - 1], order - 1, x, create_graph)


def check_order(order) -> None:
    if isinstance(order, bool) or not isinstance(order, int):
        raise AdcliError("type", f"order must be a whole number, got {order!r}")
    if order < 1:
        raise AdcliError("value", f"order must be at least 1, got {order}")


METHODS = ("auto", "taylor", "nested")


def taylor_or_none(y: Tensor, x: Tensor, order: int, method: str, create_graph: bool = False):
    """What :func:`nth_grads` runs for ``method``; ``None`` means nested.

    ``auto``: Taylor from order :data:`AUTO_FROM_ORDER` on, unless an op on the
    way has no rule, which it says with a warning before falling back.
    """
    if method not in METHODS:
        raise AdcliError("value", f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "nested" or (method == "auto" and order < AUTO_FROM_ORDER):
        return None
    check_order(order)
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


def nth_grads(
    y: Tensor,
    x: Tensor,
    order: int,
    create_graph: bool = False,
    method: str = "auto",
    retain_graph: bool | None = None,
    freed_by=None,
) -> list:
    """[D1, ..., Dn] with D1 = grad(sum(y), x) and Dk = grad(sum(D(k-1)), x).

    ``method``: ``"nested"`` differentiates n times (cost exponential in n);
    ``"taylor"`` gets the same numbers by Taylor mode (polynomial in n, see
    this module); ``"auto"`` (default) uses Taylor from order 3
    on and falls back to nested, with a warning, when an op has no Taylor rule.

    ``y`` must require grad (else PyTorch's error, as :func:`grad`); a
    derivative that vanishes from some order on is zeros from there.
    ``order=1`` is exactly :func:`grad`: it frees the graph unless
    ``retain_graph`` (default: ``create_graph``; ``freed_by`` as there).
    Higher orders keep ``y``'s graph unless ``retain_graph=False`` (Taylor
    mode only reads it, and the nested method's last pass would free only
    part of it).
    """
    if order < 1:
        raise AdcliError("value", f"order must be at least 1, got {order}")
    if not isinstance(y, Tensor) or grad_node(y) is None:
        raise no_grad_fn_error(y)
    if retain_graph is None:
        retain_graph = create_graph or order > 1
    found = taylor_or_none(y, x, order, method, create_graph=create_graph)
    if found is not None:
        return found
    results = []
    current = y
    for k in range(order):
        last = k == order - 1
        keep = create_graph or not last
        if current._grad_fn is None and not current._requires_grad:
            current = zeros_like(x)
        else:
            current = grad(
                _sum(current),
                x,
                create_graph=keep,
                retain_graph=keep or retain_graph,
                freed_by=freed_by,
            )
        results.append(current)
    return results
