"""Limits: each a clear ``limit`` error (E008) at the offending line, each set by a global
option before or after the command name; and the big-but-fine cases that must work."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adcli.cli.app import GlobalOptions, app, session_limits
from adcli.cli.render import hint_of
from adcli.errors import AdcliError
from adcli.lang.interpreter import Limits, Session

REPO = Path(__file__).resolve().parent.parent

EXPONENTIAL = "f0(x) = x\n" + "".join(f"f{i}(x) = f{i - 1}(f{i - 1}(x))\n" for i in range(1, 31))
NESTED_ORDER = (
    "x = ones(3, requires_grad=true)\n"
    "y = sum(sin(x) * exp(x) * tanh(x))\n"
    'd = grad(y, x, order=40, method="nested")\n'
)


def adcli(args, input=None, cwd=None):
    """Run the command in process; (exit code, stdout, stderr)."""
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), input=input)
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# (option, value, program, line and column of the error, a value under which it runs)
LIMITS = {
    "elements": ("--max-elements", "10", "x = 1\ny = ones(11)\n", (2, 5), "11"),
    "elements-of-a-result": (
        "--max-elements", "10", "a = ones(4, 1)\nb = a * ones(1, 4)\n", (2, 7), "16",
    ),
    "bytes": ("--max-bytes", "40", "x = zeros(11)\n", (1, 5), "44"),
    "bytes-held": (
        "--max-bytes", "1000", "a = zeros(100)\nb = zeros(100)\nc = zeros(100)\n", (3, 1), "1200",
    ),
    "depth-brackets": ("--max-depth", "3", "x = 1\ny = ((((x))))\n", (2, 8), "4"),
    "depth-expression": ("--max-depth", "3", "y = " + "-" * 31 + "1\n", (1, 35), "4"),
    "call-depth": (
        "--max-call-depth", "3",
        "f(x) = x\ng(x) = f(x)\nh(x) = g(x)\nk(x) = h(x)\nk(1)\n", (2, 8), "4",
    ),
    "calls": ("--max-calls", "100", EXPONENTIAL + "f6(1)\n", (2, 12), "127"),
    "order": (
        "--max-order", "3", "x = ones(2, requires_grad=true)\ngrad(sum(x^3), x, order=4)\n",
        (2, 1), "4",
    ),
    "source-bytes": ("--max-source-bytes", "20", "x = 1\ny = 2\nz = 3\nw = 4\n", (1, 1), "24"),
}  # fmt: skip


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_each_limit_is_a_limit_error_at_its_line_and_an_option(name, before, tmp_path):
    option, value, program, (line, column), enough = LIMITS[name]
    (tmp_path / "p.ad").write_text(program)
    run = ["run", "p.ad", "--json"]
    args = [option, value, *run] if before else [*run, option, value]
    code, out, err = adcli(args, cwd=tmp_path)
    assert code == 1, err
    error = json.loads(out)["error"]
    assert (error["kind"], error["code"]) == ("limit", "E008")
    assert (error["line"], error["column"]) == (line, column), error
    assert option in error["hint"], error
    # At the value it needs, the same program runs.
    code, out, err = adcli([option, enough, *run], cwd=tmp_path)
    assert code == 0, out


def test_a_limit_error_for_people_names_the_option_and_the_code(tmp_path):
    (tmp_path / "p.ad").write_text("x = 1\ny = ones(11)\n")
    code, _, err = adcli(["run", "p.ad", "--max-elements", "10"], cwd=tmp_path)
    assert code == 1
    assert err.splitlines() == [
        "p.ad:2:5: error: tensor of shape [11] would hold 11 elements, over the limit of 10",
        "y = ones(11)",
        "    ^~~~~~~~",
        "hint: make it smaller, or raise the limit with --max-elements (see: adcli explain E008)",
    ]


def test_timeout_stops_a_long_computation_and_run_goes_on(tmp_path):
    (tmp_path / "slow.ad").write_text(NESTED_ORDER)
    (tmp_path / "ok.ad").write_text("1 + 1\n")
    started = time.perf_counter()
    code, out, _ = adcli(["--timeout", "0.5", "--json", "run", "slow.ad", "ok.ad"], cwd=tmp_path)
    assert time.perf_counter() - started < 10
    slow, ok = (json.loads(line) for line in out.splitlines())
    assert code == 1
    assert slow["error"]["kind"] == "limit"
    assert slow["error"]["message"] == "the computation ran past the time limit of 0.5 s"
    assert slow["error"]["line"] == 3
    assert ok["ok"] is True


def test_eval_order_is_bounded_by_max_order():
    code, out, err = adcli(["eval", "x^2", "--at", "x=1", "--wrt", "x", "--order", "5",
                            "--max-order", "4", "--json"])  # fmt: skip
    assert code == 1
    error = json.loads(out)["error"]
    assert error["kind"] == "limit" and "derivative order 5" in error["message"]
    code, out, err = adcli(["eval", "x^2", "--at", "x=1", "--wrt", "x", "--order", "4",
                            "--max-order", "4"])  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize(
    "option",
    ["--max-elements", "--max-bytes", "--max-depth", "--max-call-depth", "--max-calls",
     "--max-order", "--max-source-bytes", "--timeout"],
)  # fmt: skip
@pytest.mark.parametrize("value", ["0", "-3", "lots"])
def test_a_limit_that_is_not_a_positive_number_is_a_usage_error(option, value):
    code, _, err = adcli([option, value, "eval", "1"])
    assert code == 2
    assert option in err and "Traceback" not in err


def test_command_line_limits_reach_the_session():
    given = {"max_depth": 5, "max_elements": 7, "timeout": 1.5}
    limits = session_limits(GlobalOptions(limits=given))
    assert (limits.max_depth, limits.max_expr_depth) == (5, 50)
    assert (limits.max_elements, limits.timeout) == (7, 1.5)
    assert limits.max_order == Limits().max_order  # the rest keep their defaults


# ---------------------------------------------------------------------- total bytes held
def test_rebinding_a_variable_gives_its_bytes_back():
    session = Session(limits=Limits(max_bytes=1000))
    session.run("a = zeros(200)\na = zeros(200)\na = zeros(200)\nb = 1\n")
    with pytest.raises(AdcliError) as caught:
        session.run("b = zeros(100)")
    assert caught.value.kind == "limit" and "held in variables" in caught.value.message
    session.run("a = 0\nb = zeros(100)")  # dropping a makes room
    session.reset()
    session.run("c = zeros(200)")


def test_each_new_tensor_is_checked_before_it_is_made():
    session = Session(limits=Limits(max_bytes=10**6))
    started = time.perf_counter()
    for program in ("zeros(100000, 100000)", "randn(10^12)", "ones(1e9)", "full([10^6, 10^6], 1)"):
        with pytest.raises(AdcliError) as caught:
            session.run(program)
        assert caught.value.kind == "limit", program
    assert time.perf_counter() - started < 2


# --------------------------------------------------------------- refused before any work
def test_hessian_over_the_element_limit_is_refused_before_calling_f():
    # Calling f would be a shape error: the limit error proves f never ran.
    program = "f(x) = sum(x) + sum(ones(2) + ones(3))\nhessian(f, ones(8000))\n"
    with pytest.raises(AdcliError) as caught:
        Session().run(program)
    err = caught.value
    assert err.kind == "limit" and err.span.line == 2
    assert "8,000 x 8,000 = 64,000,000" in err.message
    # The engine names the limit; the command line adds its option (hint_of).
    assert err.details["limit"] == "max_elements"
    assert "--max-elements" in hint_of(err)


@pytest.mark.parametrize("builtin", ["jacobian", "gradcheck"])
def test_jacobian_and_gradcheck_over_the_element_limit_are_refused_before_backward(builtin):
    started = time.perf_counter()
    with pytest.raises(AdcliError) as caught:
        Session().run(f"f(x) = x * 2\n{builtin}(f, ones(10000))\n")
    assert caught.value.kind == "limit"
    assert "10,000 x 10,000" in caught.value.message
    assert time.perf_counter() - started < 2  # not 10,000 reverse passes


def test_exponentially_many_calls_stop_at_the_call_limit():
    started = time.perf_counter()
    with pytest.raises(AdcliError) as caught:
        Session(limits=Limits(max_calls=10_000)).run(EXPONENTIAL + "f30(1)\n")
    assert caught.value.kind == "limit"
    assert caught.value.message == "this statement made more than 10,000 function calls"
    assert time.perf_counter() - started < 5


# ---------------------------------------------------------------- huge numbers are values
@pytest.mark.parametrize(
    "program, expected",
    [
        ("1e999999", math.inf),
        ("-1e999999", -math.inf),
        ("10^10^10", math.inf),
        ("2^1000000", math.inf),
        ("2^-1000000", 0.0),
        ("2^30", 2**30),
        ("99999999999999999999", 1e20),  # a literal past 64 bits is a float, as arithmetic is
        ("(-8)^(1/3)", math.nan),
    ],
)
def test_huge_literals_and_powers_are_numbers(program, expected):
    value = Session().run(program)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected and type(value) is type(expected)


def test_a_literal_with_more_digits_than_python_reads_is_a_limit_error():
    with pytest.raises(AdcliError) as caught:
        Session().run("x = " + "9" * 5000)
    assert (caught.value.kind, caught.value.span.column) == ("limit", 5)


# --------------------------------------------------- a 100,000-op chain and its backward
def test_a_100000_op_chain_and_its_backward_through_adcli_run(tmp_path):
    n = 100_000
    script = tmp_path / "chain.ad"
    script.write_text(
        "x = tensor(1.0, requires_grad=true)\n"
        "y = x\n" + "y = y * 1.0000001\n" * n + "y.backward()\n"
        f"assert allclose(x.grad, 1.0000001^{n}, rtol=1e-9)\n"
        "z = tensor(1.0, requires_grad=true)\n"
        "s = z" + " + z" * (n - 1) + "\n"
        "s.backward()\n"
        f"assert allclose(z.grad, {n})\n"
        f"assert allclose(s, {n})\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    proc = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [sys.executable, "-m", "adcli", "--dtype", "float64", "run", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.perf_counter() - started < 60


# ------------------------------------------------------ run goes on; JUnit lists them all
@pytest.fixture
def mixed(tmp_path):
    files = {
        "ok.ad": "x = 1 + 1\n",
        "limit.ad": "x = zeros(100000, 100000)\n",
        "anomaly.ad": "x = tensor(0.0, requires_grad=true)\ny = sqrt(x)\ny.backward()\n",
        "syntax.ad": "y = (1 +\n",
        "assert.ad": 'assert 1 == 2, "no"\n',
        "last.ad": 'print("reached")\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path, list(files)


def test_run_keeps_going_and_the_junit_report_lists_every_file(mixed):
    folder, names = mixed
    code, out, _ = adcli(["--detect-anomaly", "run", *names, "--junit", "report.xml"], cwd=folder)
    assert code == 1
    assert "reached" in out
    cases = ET.parse(folder / "report.xml").getroot().findall("testcase")
    assert [c.get("name") for c in cases] == names
    failures = {c.get("name"): c.find("failure") for c in cases}
    assert failures["ok.ad"] is None and failures["last.ad"] is None
    assert {n: f.get("type") for n, f in failures.items() if f is not None} == {
        "limit.ad": "limit",
        "anomaly.ad": "value",
        "syntax.ad": "syntax",
        "assert.ad": "assert",
    }
    assert failures["anomaly.ad"].get("message").startswith("anomaly.ad:2:5: anomaly: backward")


def test_run_fail_fast_stops_and_the_junit_report_skips_the_rest(mixed):
    folder, names = mixed
    code, out, _ = adcli(["run", *names, "--fail-fast", "--junit", "report.xml"], cwd=folder)
    assert code == 1
    assert "reached" not in out
    cases = ET.parse(folder / "report.xml").getroot().findall("testcase")
    assert [c.get("name") for c in cases] == names
    assert [c.find("skipped") is not None for c in cases] == [False, False] + [True] * 4
