"""Seeing derivatives: sampled curves for ``plot`` and spelled formulas for ``symbolic``.

:func:`sample` evaluates f and its derivatives over an interval in one
batched pass: x is one K-vector leaf, f is computed once on it, and the
orders come from the engine's Taylor mode (``nth_grads``) in one series
pushed through that single graph; never K evaluations, never finite
differences. The builtins ``plot(f, a, b, ...)`` and ``symbolic(y[, x])``
return values (:class:`PlotData`, a string) that the front end displays.
"""

from __future__ import annotations

import numpy as np

from adcli import engine as E
from adcli.engine.series import NoTaylorRule
from adcli.engine.tensor import Tensor, grad_node
from adcli.errors import AdcliError
from adcli.lang.builtins import builtin
from adcli.lang.library import whole_number
from adcli.records import record

DEFAULT_POINTS = 200
MAX_POINTS = 1_000_000


@record(frozen=True)
class PlotData:
    """f and its derivatives sampled at ``x``: ``series`` is ``{"f": ..., "d1": ..., ...}``."""

    x: np.ndarray
    series: dict
    wrt: str = "x"
    title: str = ""

    def to_json(self) -> dict:
        return {"x": self.x.tolist(), "series": {k: v.tolist() for k, v in self.series.items()}}


def check_interval(a: float, b: float, points: int, order: int) -> None:
    if not (np.isfinite(a) and np.isfinite(b)) or not a < b:
        raise AdcliError("value", f"the range must be finite with A < B, got {a:g}:{b:g}")
    if not 2 <= points <= MAX_POINTS:
        raise AdcliError("value", f"points must be between 2 and {MAX_POINTS:,}, got {points}")
    if order < 0:
        raise AdcliError("value", f"order must be 0 or more, got {order}")


def sample(
    f,
    a: float,
    b: float,
    *,
    points=DEFAULT_POINTS,
    order=1,
    dtype="float64",
    device="cpu",
    wrt="x",
    title="",
) -> PlotData:
    """f and its first ``order`` derivatives at ``points`` points of [a, b], in one pass.

    ``f`` maps a tensor to a tensor (elementwise: one value per point).
    """
    check_interval(a, b, points, order)
    x = E.linspace(float(a), float(b), int(points), dtype=dtype, device=device, requires_grad=True)
    y = f(x)
    if isinstance(y, (bool, int, float)):
        y = E.full(x.shape, float(y), dtype=dtype, device=device)
    if not isinstance(y, Tensor):
        raise AdcliError("type", "plot: f must give a tensor or a number")
    if y.shape == () and not y.requires_grad:  # a constant: the same at every point
        y = E.expand(y, *x.shape)
    if y.shape != x.shape:
        raise AdcliError(
            "shape",
            f"plot: f must give one value per point (elementwise in {wrt}), but it gave shape "
            f"{list(y.shape)} for {points} points",
            hint="plot an elementwise expression of the variable, not a sum or a matrix product",
        )
    series = {"f": y.numpy()}
    if order:
        if not y.requires_grad:
            grads = [E.zeros_like(x) for _ in range(order)]
        else:
            try:
                grads = E.nth_grads(y, x, order, method="taylor")
            except NoTaylorRule:
                grads = E.nth_grads(y, x, order, method="nested")
        for k, d in enumerate(grads, start=1):
            series[f"d{k}"] = d.numpy()
    return PlotData(x.numpy(), series, wrt, title)


@builtin(
    "plot",
    ("f", "a", "b"),
    keywords=frozenset({"order", "points"}),
    doc="f and its derivatives over [a, b], drawn by the front end",
)
def _plot(s, f, a, b, order=1, points=DEFAULT_POINTS):
    fn = s.as_callable(f, s._statement_span)
    name = getattr(f, "name", "f")
    params = getattr(f, "params", ("x",))
    lo = _number(a, "a")
    hi = _number(b, "b")
    return sample(
        fn,
        lo,
        hi,
        points=whole_number(points, "points"),
        order=whole_number(order, "order"),
        dtype=s.dtype,
        device=s.backend,
        wrt=params[0] if params else "x",
        title=f"{name} on [{lo:g}, {hi:g}]",
    )


def _number(value, what: str) -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AdcliError("type", f"plot: {what} must be a number")
    return float(value)


@builtin(
    "symbolic",
    ("y", "x"),
    required=1,
    keywords=frozenset({"order"}),
    doc="the expression that computed y, or (with x) its derivative, as a program",
)
def _symbolic(s, y, x=None, order=1):
    from adcli.lang import symbolic

    variables = s.variables()
    if x is None:
        return symbolic.value_program(y, variables)
    if not isinstance(x, Tensor):
        raise AdcliError("type", "symbolic(y, x): x must be a tensor variable")
    name = next((n for n, v in variables.items() if v is x), x.name or "x")
    programs = symbolic.derivative_programs(y, x, name, whole_number(order, "order"), variables)
    return programs[-1]


def describe_graph(value, values: bool = False) -> list[dict]:
    """The grad_fn graph of ``value``, breadth first from its node (id 0).

    Each entry: ``id``, ``name`` (``MulBackward``, ``AccumulateGrad``), ``op`` (the
    table's op, None for a leaf), ``shape`` (of the node's output), ``next`` (ids of
    its inputs' nodes, in argument order, leaving out inputs that need no grad) and
    ``variable`` (a leaf's name). With ``values``: ``value`` and ``grad`` (of the sum
    of ``value`` with respect to that node's output) as NumPy arrays, where known.
    """
    if isinstance(value, Tensor):
        root = grad_node(value)
        outputs = {id(root): value}
    elif hasattr(value, "next_functions"):  # a grad_fn itself (``y.grad_fn``)
        root, outputs = value, {}
    else:
        return []
    if root is None:
        return []
    ids = {id(root): 0}
    order = [root]
    for node in order:  # grows as the walk finds new nodes
        inputs = getattr(node, "inputs", None) or ()
        for t in inputs:
            if isinstance(t, Tensor) and t.grad_fn is not None:
                outputs.setdefault(id(t.grad_fn), t)
        for child, _ in node.next_functions:
            if child is not None and id(child) not in ids:
                ids[id(child)] = len(order)
                order.append(child)
    entries = []
    for node in order:
        variable = getattr(node, "variable", None)
        op = getattr(node, "op", None)
        if variable is not None:
            shape = variable.shape
            outputs.setdefault(id(node), variable)
        else:
            shape = node.out_shape
        entries.append(
            {
                "id": ids[id(node)],
                "name": node.name(),
                "op": op.name if op is not None else None,
                "shape": list(shape),
                "next": [ids[id(c)] for c, _ in node.next_functions if c is not None],
                "variable": variable.name if variable is not None else None,
            }
        )
    if values:
        if not isinstance(value, Tensor):
            raise AdcliError("value", "--values needs the tensor, not its grad_fn")
        known = [(e, outputs.get(id(n))) for e, n in zip(entries, order)]
        tensors = [t for _, t in known if t is not None]
        try:
            grads = E.grad(E.sum(value), tensors, retain_graph=True) if tensors else []
        except AdcliError:  # the graph was freed by a backward in the program
            grads = [None] * len(tensors)
        by_tensor = {id(t): g for t, g in zip(tensors, grads)}
        for entry, t in known:
            entry["value"] = t.numpy() if t is not None else None
            g = by_tensor.get(id(t)) if t is not None else None
            entry["grad"] = g.numpy() if g is not None else None
    return entries
