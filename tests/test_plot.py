"""``adcli plot`` and ``plot(...)``: sampled values against closed forms, golden text plots,
gaps where f is not finite, files through matplotlib, and one batched pass."""

from __future__ import annotations

import builtins
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from adcli.cli.app import app
from adcli.cli.plot import _finite_runs, parse_range, plot_text, series_label
from adcli.engine.tensor import STATE
from adcli.lang.interpreter import Session
from adcli.lang.seeing import PlotData


def _cli(args, env=None):
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def _strict(text: str) -> dict:
    def refuse(constant):
        raise AssertionError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _plot_json(*args) -> dict:
    code, out, err = _cli(["--json", "--dtype", "float64", "plot", *args])
    assert code == 0, err
    return _strict(out)


def _num(values):
    return np.array([float(v) for v in values])


# ----- values against closed forms -----------------------------------------------------------
def test_sin_and_three_derivatives_match_their_closed_forms():
    data = _plot_json("sin(x)", "--wrt", "x", "--range", "0:3", "--order", "3", "--points", "50")
    x = _num(data["x"])
    np.testing.assert_allclose(x, np.linspace(0, 3, 50), rtol=0, atol=1e-15)
    assert list(data["series"]) == ["f", "d1", "d2", "d3"]
    expected = [np.sin(x), np.cos(x), -np.sin(x), -np.cos(x)]
    for key, want in zip(data["series"], expected):
        np.testing.assert_allclose(_num(data["series"][key]), want, rtol=1e-12, atol=1e-12)


def test_other_variables_are_bound_with_at():
    data = _plot_json("exp(y*x)", "--wrt", "x", "--range", "-1:1", "--at", "y=2", "--order", "4")
    x = _num(data["x"])
    assert len(x) == 200  # the default number of points
    for k in range(5):
        got = _num(data["series"]["f" if k == 0 else f"d{k}"])
        np.testing.assert_allclose(got, 2.0**k * np.exp(2 * x), rtol=1e-11)


def test_order_zero_plots_f_alone_and_pi_ranges_are_read():
    data = _plot_json("cos(x)", "--wrt", "x", "--range", "-pi:2pi", "--order", "0", "--points", "3")
    assert list(data["series"]) == ["f"]
    np.testing.assert_allclose(_num(data["x"]), [-math.pi, math.pi / 2, 2 * math.pi])


def test_values_that_are_not_finite_are_strict_json_strings():
    data = _plot_json("log(x)", "--wrt", "x", "--range", "-1:1", "--points", "3")
    assert data["series"]["f"] == ["nan", "-inf", 0.0]
    assert data["series"]["d1"][1] in ("inf", "nan", "-inf")


def test_plot_of_a_function_in_a_script():
    s = Session(dtype="float64")
    value = s.run("f(t) = t^3; plot(f, -1, 1, order=3, points=11)")
    assert isinstance(value, PlotData)
    x = value.x
    np.testing.assert_allclose(value.series["d1"], 3 * x**2, rtol=1e-12)
    np.testing.assert_allclose(value.series["d2"], 6 * x, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(value.series["d3"], np.full(11, 6.0), rtol=1e-12)


def test_plot_in_a_script_displays_and_gives_json(tmp_path):
    script = tmp_path / "p.ad"
    script.write_text("plot(sin, 0, 1, points=5)\n")
    code, out, _ = _cli(["--json", "run", str(script)])
    assert code == 0
    shown = _strict(out)["outputs"][0]
    assert shown["type"] == "plot"
    assert set(shown["series"]) == {"f", "d1"}
    code, out, _ = _cli(["run", str(script)])
    assert code == 0 and "f'" in out and "┤" in out


def test_derivatives_come_from_one_batched_pass():
    # The graph recorded does not grow with the number of points: x is one vector leaf.
    s = Session(dtype="float64")
    counts = []
    for points in (50, 400):
        before = STATE.recorded
        s.plot("sin(x)*exp(-x^2)", "x", -2, 2, points=points, order=4)
        counts.append(STATE.recorded - before)
    assert counts[0] == counts[1]


# ----- errors ---------------------------------------------------------------------------------
def test_f_must_be_elementwise():
    code, _, err = _cli(["plot", "sum(x^2)", "--wrt", "x", "--range", "0:1"])
    assert code == 1
    assert "one value per point" in err


@pytest.mark.parametrize("bad", ["3:1", "1", "a:b", "0:inf"])
def test_a_bad_range_is_a_usage_error(bad):
    code, _, err = _cli(["plot", "x", "--wrt", "x", "--range", bad])
    assert code == 2
    assert "--range" in err


def test_a_program_error_has_its_place():
    code, _, err = _cli(["plot", "x + nope", "--wrt", "x", "--range", "0:1"])
    assert code == 1
    assert "<plot>:1:5: error: unknown name 'nope'" in err


# ----- drawing --------------------------------------------------------------------------------
GOLDEN_X_SQUARED = """\
  ┌──────────────────────────────────────────────┐
 2┤                                           +++│
  │                                     ++++++   │
 1┤••••                           ++++++     ••••│
  │    •••••••               +++++    •••••••    │
 0┤           •••••••••++++++•••••••••           │
  │               +++++                          │
-1┤         ++++++                               │
  │   ++++++                                     │
-2┤+++                                           │
  └┬───────┬──────┬───────┬──────┬──────┬───────┬┘
   -1.00 -0.67  -0.33    0.00   0.33   0.67  1.00
   • f   + f'"""


def test_golden_plain_text_plot():
    code, out, _ = _cli(
        [
            "plot",
            "x^2",
            "--wrt",
            "x",
            "--range",
            "-1:1",
            "--points",
            "21",
            "--width",
            "50",
            "--height",
            "12",
        ]
    )
    assert code == 0
    assert "\x1b[" not in out  # no colour off a terminal
    assert out.rstrip("\n") == GOLDEN_X_SQUARED


def test_one_legend_entry_per_order():
    x = np.linspace(-1, 1, 30)
    data = PlotData(x, {"f": x**4, "d1": 4 * x**3, "d2": 12 * x**2, "d3": 24 * x}, "x")
    text = plot_text(data, 60, 20)
    assert text.splitlines()[-1] == "   • f   + f'   x f''   o f^(3)"


def test_a_curve_has_a_gap_where_f_is_not_finite():
    xs = [0, 1, 2, 3, 4, 5]
    ys = [1.0, 2.0, math.nan, math.inf, 3.0, 4.0]
    assert list(_finite_runs(xs, ys)) == [([0, 1], [1.0, 2.0]), ([4, 5], [3.0, 4.0])]
    x = np.linspace(-1, 1, 41)
    with np.errstate(divide="ignore"):
        data = PlotData(x, {"f": 1 / x}, "x")
    text = plot_text(data, 50, 12)
    assert text.splitlines()[-1] == "   • f"
    assert "•" in "".join(text.splitlines()[:-1])


def test_colour_only_when_asked():
    x = np.linspace(0, 1, 5)
    data = PlotData(x, {"f": x}, "x")
    assert "\x1b[" not in plot_text(data, 40, 10)
    assert "\x1b[" in plot_text(data, 40, 10, colour=True)


def test_labels_and_ranges():
    assert [series_label(k) for k in ("f", "d1", "d2", "d3")] == ["f", "f'", "f''", "f^(3)"]
    assert parse_range("-2.5:1e1") == (-2.5, 10.0)
    assert parse_range("-pi:pi") == (-math.pi, math.pi)


# ----- files ----------------------------------------------------------------------------------
def test_out_writes_svg_and_png(tmp_path):
    pytest.importorskip("matplotlib")
    for name, magic in (("f.svg", b"<svg"), ("f.png", b"\x89PNG")):
        path = tmp_path / name
        code, _, err = _cli(
            ["plot", "tanh(x)", "--wrt", "x", "--range", "-2:2", "--order", "2", "--out", str(path)]
        )
        assert code == 0, err
        assert magic in path.read_bytes()[:400]


def test_out_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    code, _, err = _cli(
        ["plot", "x", "--wrt", "x", "--range", "0:1", "--out", str(tmp_path / "f.svg")]
    )
    assert code == 1
    assert "needs matplotlib" in err and "adcli[plot]" in err
    assert not (tmp_path / "f.svg").exists()


def test_out_needs_svg_or_png(tmp_path):
    code, _, err = _cli(
        ["plot", "x", "--wrt", "x", "--range", "0:1", "--out", str(tmp_path / "f.pdf")]
    )
    assert code == 1
    assert ".svg or .png" in err


def test_plot_in_the_repl():
    result = CliRunner().invoke(app, ["repl"], input="f(t) = t^2\nplot(f, -1, 1, points=5)\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip().splitlines()[-1].strip() == "• f   + f'"


def test_plot_as_a_real_subprocess():
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "adcli",
            "plot",
            "-x^2",
            "--wrt",
            "x",
            "--range",
            "-1:1",
            "--points",
            "3",
            "--order",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _strict(proc.stdout) == {
        "x": [-1.0, 0.0, 1.0],
        "series": {"f": [-1.0, -0.0, -1.0], "d1": [2.0, -0.0, -2.0], "d2": [-2.0, -2.0, -2.0]},
    }
