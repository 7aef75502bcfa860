"""Seeing derivatives: sampled curves for ``plot`` and spelled formulas for ``symbolic``.

:func:`sample` evaluates f and its derivatives over an interval in one
batched pass: x is one K-vector leaf, f is computed once on it, and the
orders come from the engine's Taylor mode (``nth_grads``) in one series
pushed through that single graph; never K evaluations, never finite
differences. The builtins ``plot(f, a, b, ...)`` and ``symbolic(y[, x])``
return values (:class:`PlotData`, a string) that the front end displays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adcli import engine as E
from adcli.engine.series import NoTaylorRule
from adcli.engine.tensor import Tensor
from adcli.errors import AdcliError
from adcli.lang.builtins import builtin
from adcli.lang.library import whole_number

DEFAULT_POINTS = 200
MAX_POINTS = 1_000_000


@dataclass(frozen=True)
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


def sample(f, a: float, b: float, *, points=DEFAULT_POINTS, order=1, dtype="float64",
           device="cpu", wrt="x", title="") -> PlotData:
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
    if y.shape == ():
        y = E.expand(y, *x.shape)
    if y.shape != x.shape:
        raise AdcliError(
            "shape",
            f"plot: f must give one value per point (elementwise in {wrt}), but it gave shape "
            f"{list(y.shape)} for {points} points",
            hint="plot an elementwise expression of the variable, not a sum or a matrix product",
        )
    series = {"f": y.numpy().astype(np.float64)}
    if order:
        if not y.requires_grad:
            grads = [E.zeros_like(x) for _ in range(order)]
        else:
            try:
                grads = E.nth_grads(y, x, order, method="taylor")
            except NoTaylorRule:
                grads = E.nth_grads(y, x, order, method="nested")
        for k, d in enumerate(grads, start=1):
            series[f"d{k}"] = d.numpy().astype(np.float64)
    return PlotData(x.numpy().astype(np.float64), series, wrt, title)


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
