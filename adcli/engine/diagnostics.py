"""Diagnostics of nth derivatives: Taylor mode against nested differentiation
and finite differences (Richardson's extrapolation in float64), and what each
order costs (graph nodes, time, peak memory)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from adcli.engine.taylor import (
    AUTO_FROM_ORDER,
    METHODS,
    NoTaylorRule,
    check_order,
    missing_rules,
    nth_grads,
    taylor_grad,
    taylor_grads,
)
from adcli.engine.tensor import STATE, Tensor, check_differentiable, enable_grad
from adcli.errors import AdcliError


def _fresh_leaf(x: Tensor, dtype=None) -> Tensor:
    data = x._data if dtype is None else x._data.astype(dtype)
    leaf = Tensor(data, x._backend, requires_grad=True)
    leaf.name = x.name
    return leaf


def _nested(y, x, order, create_graph=False):
    # Diagnostics go through one graph several times: keep it.
    return nth_grads(y, x, order, create_graph=create_graph, method="nested", retain_graph=True)


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
        # As gradcheck: a leaf that requires grad, with grad mode on, so an f that
        # itself differentiates (calls grad on its input) is evaluated correctly.
        with enable_grad():
            out = f(Tensor(x._backend.asarray(point), x._backend, requires_grad=True))
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
    check_order(order)
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

    The count is read from the engine's running total when the block ends.
    """
    count = [0]
    start = STATE.recorded
    try:
        yield count
    finally:
        count[0] = STATE.recorded - start


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
    import tracemalloc  # here: the start-up of adcli eval does not wait for it

    check_order(order)
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
