"""``adcli plot``: f and its derivatives over an interval, in the terminal or in a file.

The samples come from :func:`adcli.lang.seeing.sample` (one batched pass,
Taylor mode for the orders); this module only draws them: plotext in the
terminal (imported here only, so start-up stays quick), matplotlib for
``--out FILE.svg|.png`` (the optional ``plot`` extra).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any

import typer

from adcli.cli.numbers import array_json
from adcli.errors import AdcliError

#: One colour and one marker per curve (f, d1, d2, ...), in order; markers tell the
#: curves apart where there is no colour.
COLOURS = ("blue", "red", "green", "magenta", "cyan", "yellow")
MARKERS = ("•", "+", "x", "o", "*", "#")
DEFAULT_SIZE = (72, 20)

# Compiled (and cached by re) on first use: only ``adcli plot`` reads a range.
_RANGE_SIDE = r"\s*([+-]?)\s*(?:(\d*\.?\d*(?:[eE][+-]?\d+)?)\s*\*?\s*)?(pi)?\s*\Z"


def series_label(name: str, wrt: str = "x") -> str:
    """``f``, ``f'``, ``f''``, then ``f^(3)``: how the legend names an order."""
    if name == "f":
        return "f"
    k = int(name[1:])
    return "f" + "'" * k if k <= 2 else f"f^({k})"


def parse_number(text: str, what: str = "range") -> float:
    """A number, ``pi``, ``-pi`` or ``2pi``/``2*pi`` (for ``--range -pi:pi``)."""
    try:
        return float(text)
    except ValueError:
        pass
    m = re.match(_RANGE_SIDE, text)
    if m and (m.group(2) or m.group(3)):
        sign = -1.0 if m.group(1) == "-" else 1.0
        factor = float(m.group(2)) if m.group(2) else 1.0
        return sign * factor * (math.pi if m.group(3) else 1.0)
    raise typer.BadParameter(f"{text!r} is not a number (say -3, 2.5 or pi)", param_hint=what)


def parse_range(text: str) -> tuple[float, float]:
    """``A:B`` as two floats with A < B."""
    left, sep, right = text.partition(":")
    if not sep:
        raise typer.BadParameter(f"{text!r} is not A:B (say -3:3)", param_hint="'--range'")
    a = parse_number(left, "'--range'")
    b = parse_number(right, "'--range'")
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise typer.BadParameter(f"{text!r}: need finite A < B", param_hint="'--range'")
    return a, b


def _finite_runs(xs, ys):
    """Stretches of consecutive finite points: a curve has a gap where f is not finite."""
    run_x: list = []
    run_y: list = []
    for x, y in zip(xs, ys):
        if math.isfinite(y):
            run_x.append(x)
            run_y.append(y)
        elif run_x:
            yield run_x, run_y
            run_x, run_y = [], []
    if run_x:
        yield run_x, run_y


_ANSI = {"blue": 34, "red": 31, "green": 32, "magenta": 35, "cyan": 36, "yellow": 33}


def plot_text(
    data: Any, width: int | None = None, height: int | None = None, colour: bool = False
) -> str:
    """The figure as terminal text: plotext, one colour and marker per order, and a legend
    line under the axes (inside the canvas it would hide the curves)."""
    import plotext

    fig = plotext.figure
    fig.clear()
    w, h = DEFAULT_SIZE
    fig.plot_size(width or w, height or h)
    if not colour:
        fig.theme("colorless")
    xs = [float(v) for v in data.x]
    legend = []
    drawn = 0
    for i, (name, values) in enumerate(data.series.items()):
        ys = [float(v) for v in values]
        symbol = MARKERS[i % len(MARKERS)]
        hue = COLOURS[i % len(COLOURS)]
        marker = plotext.marker(symbol, hue if colour else None)
        for run_x, run_y in _finite_runs(xs, ys):
            signal = fig.signal(run_x, run_y, marker=marker)
            signal.lines(True)
            fig.draw(signal)
            drawn += 1
        key = f"\x1b[{_ANSI[hue]}m{symbol}\x1b[0m" if colour else symbol
        legend.append(f"{key} {series_label(name, data.wrt)}")
    if data.title:
        fig.title(data.title)
    if not drawn:
        fig.clear()
        return "(nothing to plot: no value is finite)"
    text = fig.build().string(colorless=not colour)
    fig.clear()
    lines = [line.rstrip() for line in text.splitlines()]
    lines.append("   " + "   ".join(legend))
    return "\n".join(lines)


def save_figure(data: Any, path: str) -> None:
    """Write the figure to ``path`` (.svg or .png) with matplotlib (the ``plot`` extra)."""
    lower = path.lower()
    if not lower.endswith((".svg", ".png")):
        raise AdcliError("value", f"--out {path}: the file must end in .svg or .png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AdcliError(
            "value",
            f"writing {path} needs matplotlib, which is not installed",
            hint="install the plot extra: pip install 'adcli[plot]' (or drop --out to plot "
            "in the terminal)",
        ) from None
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        for i, (name, values) in enumerate(data.series.items()):
            ys = np.where(np.isfinite(values), values, np.nan)  # NaN: matplotlib leaves a gap
            ax.plot(data.x, ys, label=series_label(name, data.wrt), color=f"C{i}")
        ax.set_xlabel(data.wrt)
        ax.axhline(0, color="0.8", linewidth=0.8)
        ax.legend()
        if data.title:
            ax.set_title(data.title)
        try:
            fig.savefig(path)
        except OSError as exc:
            raise AdcliError("value", f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def plot_json(data: Any) -> dict:
    """``{"x": [...], "series": {"f": [...], "d1": [...]}}`` (strict JSON: nan/inf as strings)."""
    return {
        "x": array_json(data.x),
        "series": {k: array_json(vs) for k, vs in data.series.items()},
    }


def _binding(text: str) -> tuple[str, str]:
    name, sep, literal = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name) or not literal.strip():
        raise typer.BadParameter(f"{text!r} is not NAME=VALUE (say y=1.5)", param_hint="'--at'")
    return name, literal.strip()


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def make_command(open_session: Callable, reporting: Callable, make_renderer: Callable) -> Callable:
    """The ``plot`` command, given how the app opens a session, reports its errors and
    makes its renderer (this module sits below the renderer, which draws plots)."""

    def plot_command(
        ctx: typer.Context,
        expr: Annotated[str, typer.Argument(metavar="EXPR", help="f: an elementwise expression.")],
        wrt: Annotated[
            str, typer.Option("--wrt", metavar="NAME", help="The variable on the x axis.")
        ],
        range_: Annotated[
            str, typer.Option("--range", metavar="A:B", help="The interval, say -3:3 or -pi:pi.")
        ],
        order: Annotated[
            int, typer.Option(min=0, max=64, help="Draw f' ... f^(N) too (0: f alone).")
        ] = 1,
        at: Annotated[
            list[str] | None,
            typer.Option("--at", metavar="NAME=VALUE", help="Bind another variable. Repeatable."),
        ] = None,
        points: Annotated[
            int, typer.Option(min=2, max=1_000_000, metavar="K", help="Points to sample.")
        ] = 200,
        out: Annotated[
            str | None,
            typer.Option("--out", metavar="FILE", help="Write FILE.svg or FILE.png (matplotlib)."),
        ] = None,
        width: Annotated[int | None, typer.Option(min=20, help="Terminal plot width.")] = None,
        height: Annotated[int | None, typer.Option(min=5, help="Terminal plot height.")] = None,
    ) -> None:
        """Draw f and its derivatives with respect to a scalar over an interval."""
        opts = ctx.obj
        a, b = parse_range(range_)
        if not _NAME.match(wrt):
            raise typer.BadParameter(f"{wrt!r} is not a variable name", param_hint="'--wrt'")
        bindings = [_binding(text) for text in at or []]
        renderer = make_renderer(json_mode=opts.json, debug=opts.debug)
        with reporting(renderer, None):
            session = open_session(opts)
        for bound, literal in bindings:
            try:
                session.bind(bound, session.make_tensor(literal))
            except AdcliError as err:
                raise typer.BadParameter(
                    f"{bound}={literal}: {err.message}", param_hint="'--at'"
                ) from None
        with reporting(renderer, session):
            data = session.plot(expr, wrt, a, b, points=points, order=order, emit=renderer.emit)
            if out is not None:
                save_figure(data, out)
        if renderer.json_mode:
            result = plot_json(data)
            if out is not None:
                result["out"] = out
            renderer.json(result)
            return
        if out is not None:
            renderer.notice(f"wrote {out}")
            return
        renderer.line(plot_text(data, width, height, colour=wants_colour(renderer.out)))

    return plot_command


def wants_colour(console: Any) -> bool:
    """Colour only on a terminal, never with NO_COLOR (the console knows both)."""
    return bool(console.is_terminal and console.color_system is not None)
