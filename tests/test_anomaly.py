"""Anomaly mode (--detect-anomaly, anomaly(true)): a NaN or Inf made by a forward or
backward op is an error that names the op and points at the .ad line and column that
created it (for a backward op: where its forward ran, not the backward() line)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adcli.cli.app import app
from adcli.engine.tensor import STATE
from adcli.errors import AdcliError
from adcli.lang.interpreter import Session

FORWARD = "x = tensor(0.0, requires_grad=true)\nz = x * 2\ny = sqrt(x - 1)\n"
BACKWARD = "x = tensor(0.0, requires_grad=true)\ny = sqrt(x)\nw = y * 3\n\nw.backward()\n"


def adcli(args, cwd=None):
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def failure(program: str, **session) -> AdcliError:
    with pytest.raises(AdcliError) as caught:
        Session(**session).run(program, "t.ad")
    return caught.value


def at(err: AdcliError) -> tuple[int, int]:
    return err.span.line, err.span.column


@pytest.mark.parametrize("how", ["option", "builtin"])
def test_a_forward_nan_points_at_the_call_that_made_it(how):
    if how == "option":
        err = failure(FORWARD, detect_anomaly=True)
    else:
        err = failure("anomaly(true)\n" + FORWARD)
    assert err.kind == "value"
    assert err.message == "anomaly: forward of 'sqrt' (sqrt) produced NaN or Inf"
    assert at(err) == ((3, 5) if how == "option" else (4, 5))  # the `sqrt(` of `y = sqrt(x - 1)`
    assert (err.span.end_line, err.span.end_column) == (err.span.line, 16)


@pytest.mark.parametrize("how", ["option", "builtin"])
def test_a_backward_only_inf_points_at_the_forward_line_not_the_backward_line(how):
    if how == "option":
        err = failure(BACKWARD, detect_anomaly=True)
    else:
        err = failure("anomaly(true)\n" + BACKWARD)
    assert err.message == "anomaly: backward of 'sqrt' (SqrtBackward) produced NaN or Inf"
    assert at(err) == ((2, 5) if how == "option" else (3, 5))  # `sqrt(x)`, not `w.backward()`


def test_without_anomaly_mode_nan_and_inf_flow_through_silently():
    session = Session()
    session.run(FORWARD)
    assert math.isnan(session.lookup("y").item())
    session = Session()
    session.run(BACKWARD)
    assert math.isinf(session.lookup("x").grad.item())
    assert STATE.anomaly is False


def test_anomaly_false_turns_it_off_again():
    session = Session()
    session.run("anomaly(true)\nanomaly(false)\n" + FORWARD)
    assert math.isnan(session.lookup("y").item())


def test_an_operator_and_a_method_are_pointed_at_too():
    err = failure("x = tensor(0.0)\ny = 1 + x / 0\n", detect_anomaly=True)
    assert err.message == "anomaly: forward of 'div' (div) produced NaN or Inf"
    assert at(err) == (2, 11)  # the `/`
    err = failure("x = tensor(0.0)\n\ny = x.log()\n", detect_anomaly=True)
    assert "forward of 'log'" in err.message
    assert at(err) == (3, 5)


def test_inside_a_function_the_op_in_its_body_is_pointed_at():
    program = "f(a) = 2 * sqrt(a - 1)\nx = tensor(0.0)\ny = f(x)\n"
    err = failure(program, detect_anomaly=True)
    assert "forward of 'sqrt'" in err.message
    assert at(err) == (1, 12)


@pytest.mark.parametrize(
    "backward",
    ["grad(w, x)", "w.backward(create_graph=true)", 'grad(w, x, order=2, method="nested")'],
)
def test_every_kind_of_backward_is_checked(backward):
    err = failure(BACKWARD.replace("w.backward()", backward), detect_anomaly=True)
    assert "backward of 'sqrt'" in err.message
    assert at(err) == (2, 5)


def test_the_command_line_flag_before_or_after_the_command(tmp_path):
    (tmp_path / "b.ad").write_text(BACKWARD)
    for args in (["--detect-anomaly", "run", "b.ad"], ["run", "b.ad", "--detect-anomaly"]):
        code, _, err = adcli(args, cwd=tmp_path)
        assert code == 1
        assert err.splitlines()[:3] == [
            "b.ad:2:5: error: anomaly: backward of 'sqrt' (SqrtBackward) produced NaN or Inf",
            "y = sqrt(x)",
            "    ^~~~~~~",
        ]
        assert "adcli explain E007" in err
    code, _, err = adcli(["run", "b.ad"], cwd=tmp_path)
    assert code == 0, err


def test_eval_json_error_has_the_line_and_column_of_the_op():
    program = "x = tensor(0.0, requires_grad=true); y = sqrt(x); y.backward()"
    code, out, _ = adcli(["eval", program, "--json", "--detect-anomaly"])
    assert code == 1
    error = json.loads(out)["error"]
    assert (error["kind"], error["code"], error["line"], error["column"]) == (
        "value",
        "E007",
        1,
        program.index("sqrt") + 1,
    )
