"""The command line, held to shared/spec/cli.md: every command and option, in process
through Typer's CliRunner and as a real ``python -m adcli`` subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from cli_driver import REPO, subprocess_env, via_runner, via_subprocess

from adcli import __version__

EXAMPLES = sorted((REPO / "scripts" / "examples").glob("*.ad"))
CLI_MD_EXAMPLE = ["eval", "x^2 + x*y + y^2", "--at", "x=1.5", "--at", "y=2", "--wrt", "x"]
ANSI = "\x1b["


@pytest.fixture
def scripts(tmp_path):
    """A folder with a passing, a failing and a syntactically broken script."""
    (tmp_path / "ok.ad").write_text(
        "x = tensor([1., 2.], requires_grad=true)\n"
        "y = sum(x^2)\n"
        "y\n"
        'print("hello", 3)\n'
        "y.backward()\n"
        "x.grad\n"
        "assert allclose(x.grad, 2*x)\n"
    )
    (tmp_path / "bad.ad").write_text('a = tensor(1.)\nassert allclose(a, 2), "a is not two"\n')
    (tmp_path / "broken.ad").write_text("x = 1\ny = (x +\n")
    return tmp_path


# --------------------------------------------------------------------------- adcli eval
def test_eval_shows_value_and_derivatives_of_the_spec_example(adcli):
    result = adcli([*CLI_MD_EXAMPLE, "--order", "2"])
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "tensor(9.2500)"
    assert lines[1] == "shape=[] dtype=float32 device=cpu grad_fn=<AddBackward>"
    rows = [line for line in lines if "tensor(" in line][1:]
    assert len(rows) == 2
    assert re.search(r"\b1\b.*tensor\(5\.\)", rows[0])
    assert re.search(r"\b2\b.*tensor\(2\.\)", rows[1])
    assert result.err == ""


def test_eval_json_of_the_spec_example(adcli):
    result = adcli([*CLI_MD_EXAMPLE, "--order", "2", "--json"])
    assert result.code == 0, result.err
    got = result.json()
    assert got["value"] == 9.25
    assert got["shape"] == []
    assert (got["dtype"], got["device"], got["grad_fn"]) == ("float32", "cpu", "AddBackward")
    assert got["grads"] == {"x": 5.0}
    assert got["derivatives"] == {"x": [5.0, 2.0]}
    assert "graph" not in got


def test_eval_first_derivative_is_labelled_by_variable(adcli):
    result = adcli(["eval", "sqrt(sum(x^2))", "--at", "x=[3, 4]", "--wrt", "x"])
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "tensor(5.)",
        "shape=[] dtype=float32 device=cpu grad_fn=<SqrtBackward>",
        "∂/∂x = tensor([0.6000, 0.8000])",
    ]


def test_eval_several_wrt_and_orders(adcli):
    result = adcli([*CLI_MD_EXAMPLE, "--wrt", "y", "--order", "3", "--json"])
    got = result.json()
    assert got["grads"] == {"x": 5.0, "y": 5.5}
    assert got["derivatives"] == {"x": [5.0, 2.0, 0.0], "y": [5.5, 2.0, 0.0]}


def test_eval_wrt_a_name_the_program_binds(adcli):
    result = adcli(["eval", "x = tensor([1., 2.]); sum(x^3)", "--wrt", "x", "--json"])
    assert result.code == 0, result.err
    assert result.json()["grads"] == {"x": [3.0, 12.0]}


def test_eval_graph_as_a_tree_and_as_json(adcli):
    args = ["eval", "sqrt(sum(x^2))", "--at", "x=[3, 4]", "--wrt", "x", "--graph"]
    text = adcli(args).out
    assert text.splitlines()[3:] == [
        "SqrtBackward",
        "└── SumBackward",
        "    └── PowBackward",
        "        └── AccumulateGrad (x)",
    ]
    graph = adcli([*args, "--json"]).json()["graph"]
    assert [(n["id"], n["name"], n["next"], n["variable"]) for n in graph] == [
        (0, "SqrtBackward", [1], None),
        (1, "SumBackward", [2], None),
        (2, "PowBackward", [3], None),
        (3, "AccumulateGrad", [], "x"),
    ]


def test_eval_graph_of_a_constant_is_empty(adcli):
    assert adcli(["eval", "1 + 1", "--graph", "--json"]).json()["graph"] == []
    assert "grad_fn: None" in adcli(["eval", "tensor(1.)", "--graph"]).out


def test_eval_at_binds_vectors_and_matrices(adcli):
    got = adcli(["eval", "x * 2", "--at", "x=[1, 2.5, -3]", "--json"]).json()
    assert (got["value"], got["shape"], got["grad_fn"]) == ([2.0, 5.0, -6.0], [3], None)
    got = adcli(["eval", "m", "--at", "m=[[1, 2], [3, 4]]", "--json"]).json()
    assert (got["value"], got["shape"]) == ([[1.0, 2.0], [3.0, 4.0]], [2, 2])


def test_eval_json_is_strict_nan_and_infinities_are_strings(adcli):
    result = adcli(["eval", "log(x)", "--at", "x=[-1, 0, 1]", "--json"])
    assert result.code == 0, result.err
    assert "NaN" not in result.out and "Infinity" not in result.out
    assert result.json()["value"] == ["nan", "-inf", 0.0]


def test_eval_json_of_non_tensor_values(adcli):
    def value(program, *extra):
        got = adcli(["eval", program, "--json", *extra]).json()
        return got["type"], got["value"], got["shape"], got["dtype"], got["device"]

    assert value("x = 1") == ("none", None, [], None, None)
    assert value("true") == ("bool", True, [], None, None)
    assert value('"hi"') == ("string", "hi", [], None, None)
    assert value("shape(m)", "--at", "m=[[1, 2], [3, 4]]") == ("tuple", [2, 2], [], None, None)
    assert value("item(x)", "--at", "x=2.5") == ("number", 2.5, [], None, None)


def test_eval_json_keeps_prints_in_outputs(adcli):
    got = adcli(["eval", 'print("hi"); tensor(2.)', "--json"]).json()
    assert got["outputs"] == [{"type": "print", "text": "hi"}]
    assert got["value"] == 2.0


def test_eval_shows_only_the_last_value_and_prints(adcli):
    result = adcli(["eval", 'tensor(1.); print("hi"); tensor(2.)'])
    assert result.out.splitlines() == ["hi", "tensor(2.)", "shape=[] dtype=float32 device=cpu"]


def test_eval_plain_values(adcli):
    assert adcli(["eval", "true"]).out == "true\n"
    assert adcli(["eval", "shape(x)", "--at", "x=[1, 2, 3]"]).out == "[3]\n"
    assert adcli(["eval", "x = 1"]).out == ""
    assert adcli(["eval", "x.grad", "--at", "x=1"]).out == "None\n"
    assert adcli(["eval", "x.grad; y = 2", "--at", "x=1"]).out == ""


def test_eval_grad_fn_value_is_shown_as_its_chain(adcli):
    result = adcli(["eval", "exp(x).grad_fn", "--at", "x=1", "--wrt", "x"])
    assert result.out.splitlines()[:2] == ["ExpBackward", "└── AccumulateGrad (x)"]


def test_global_options_before_and_after_the_command_mean_the_same(adcli):
    after = adcli(["eval", "x * 2", "--at", "x=1.5", "--dtype", "float64", "--json"])
    before = adcli(["--dtype", "float64", "--json", "eval", "x * 2", "--at", "x=1.5"])
    mixed = adcli(["--json", "eval", "x * 2", "--dtype=float64", "--at", "x=1.5"])
    assert after.code == before.code == mixed.code == 0
    assert after.out == before.out == mixed.out
    assert after.json()["dtype"] == "float64"


def test_seed_makes_randn_reproducible(adcli):
    first = adcli(["eval", "randn(3)", "--seed", "7", "--json"]).json()["value"]
    again = adcli(["--seed", "7", "eval", "randn(3)", "--json"]).json()["value"]
    other = adcli(["eval", "randn(3)", "--seed", "8", "--json"]).json()["value"]
    assert first == again
    assert first != other


def test_a_program_starting_with_a_minus_is_not_an_option(adcli):
    assert adcli(["eval", "-x^2", "--at", "x=3", "--json"]).json()["value"] == -9.0
    assert adcli(["eval", "--json", "--", "-x^2", "--at", "x=3"]).code == 2  # --at after --


# --------------------------------------------------------------------------- errors
def test_program_error_is_file_line_column_source_and_caret(adcli):
    result = adcli(["eval", "1 + foo(2)"])
    assert result.code == 1
    assert result.out == ""
    lines = result.err.splitlines()
    assert re.fullmatch(r"<eval>:1:5: error: .*'foo'.*", lines[0])
    assert lines[1] == "1 + foo(2)"
    assert lines[2] == "    ^~~"


def test_program_error_as_json(adcli):
    result = adcli(["eval", "1 + foo(2)", "--json"])
    assert result.code == 1
    error = result.json()["error"]
    assert (error["kind"], error["line"], error["column"]) == ("name", 1, 5)
    assert "foo" in error["message"]
    assert (error["code"], error["file"]) == ("E002", "<eval>")


def test_syntax_error_points_at_the_end_of_the_line(adcli):
    result = adcli(["eval", "1 +"])
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0].startswith("<eval>:1:4: error: ")
    assert lines[1:3] == ["1 +", "   ^"]
    assert adcli(["eval", "1 +", "--json"]).json()["error"]["kind"] == "syntax"


def test_failed_assert_exits_1_with_its_message(adcli):
    result = adcli(["eval", 'assert allclose(tensor(1.), 2), "nope"', "--json"])
    assert result.code == 1
    error = result.json()["error"]
    assert (error["kind"], error["message"], error["line"], error["column"]) == (
        "assert",
        "nope",
        1,
        1,
    )


def test_debug_shows_the_traceback(adcli):
    result = adcli(["eval", "1 + foo(2)", "--debug"])
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert "<eval>:1:5: error:" in result.err
    assert "Traceback" not in adcli(["eval", "1 + foo(2)"]).err


def _cuda_available() -> bool:
    from adcli.backend import cuda_available

    return cuda_available()


@pytest.mark.skipif(_cuda_available(), reason="a GPU is present")
def test_device_cuda_without_a_gpu_is_a_device_error_with_no_place(adcli):
    result = adcli(["eval", "1 + 1", "--device", "cuda", "--json"])
    assert result.code == 1
    error = result.json()["error"]
    assert (error["kind"], error["line"], error["column"]) == ("device", None, None)
    assert "CuPy" in error["message"] or "GPU" in error["message"]
    human = adcli(["--device", "cuda", "eval", "1 + 1"])
    assert human.code == 1
    assert human.out == ""
    assert human.err.startswith("error: ")


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "1", "--bogus"],
        ["--bogus", "eval", "1"],
        ["eval", "1", "--dtype", "float16"],
        ["eval", "1", "--device", "gpu"],
        ["eval", "x", "--at", "x"],
        ["eval", "x", "--at", "1x=2"],
        ["eval", "x", "--at", "x=[1,"],
        ["eval", "x", "--at", "x=foo(1)"],
        ["eval", "x", "--wrt", "2x", "--at", "x=1"],
        ["eval", "x", "--at", "x=1", "--wrt", "x", "--order", "0"],
        ["eval", "1", "--order", "2"],
        ["eval", "1", "--seed", "seven"],
        ["eval"],
        ["frobnicate"],
        ["run"],
        ["run", "no/such/file.ad"],
        ["check", "no/such/file.ad"],
        ["run", "."],
    ],
)
def test_command_line_mistakes_exit_2_with_nothing_on_stdout(adcli, args):
    result = adcli([*args, "--json"])
    assert result.code == 2, (result.out, result.err)
    assert result.out == ""
    assert "Error" in result.err or "Usage" in result.err


def test_missing_file_message_names_it(adcli, scripts):
    result = adcli(["run", "ok.ad", "nope.ad"], cwd=scripts)
    assert result.code == 2
    assert "'nope.ad' does not exist" in result.err
    assert result.out == ""  # nothing ran: files are checked first


def test_version(adcli):
    result = adcli(["--version"])
    assert (result.code, result.out) == (0, f"adcli {__version__}\n")


def test_plain_adcli_off_a_terminal_prints_usage_and_exits_2(adcli):
    result = adcli([], input="")
    assert result.code == 2
    assert result.out == ""
    assert "Usage: adcli" in result.err


def test_help_lists_the_commands(adcli):
    result = adcli(["--help"])
    assert result.code == 0
    for command in ("eval", "run", "check", "repl"):
        assert re.search(rf"^\s+{command}\s", result.out, re.MULTILINE)
    assert "--install-completion" in result.out


# --------------------------------------------------------------------------- colour
def test_no_ansi_escapes_off_a_terminal(adcli):
    result = adcli([*CLI_MD_EXAMPLE, "--order", "2", "--graph"])
    assert ANSI not in result.out
    assert ANSI not in adcli(["eval", "1 + foo(2)"]).err


def _eval_on_a_terminal(env: dict) -> str:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "adcli", "eval", "sqrt(sum(x^2))", "--at", "x=[3, 4]", "--wrt", "x", "--graph"],
        env=subprocess_env({"TERM": "xterm-256color", **env}),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    text = child.read()
    child.close()
    assert child.exitstatus == 0, text
    assert "AccumulateGrad (x)" in text
    return text


def test_colour_on_a_terminal_but_never_with_no_color():
    assert ANSI in _eval_on_a_terminal({"NO_COLOR": ""})
    assert ANSI not in _eval_on_a_terminal({"NO_COLOR": "1"})


# --------------------------------------------------------------------------- adcli run
def test_run_shows_values_and_keeps_going_after_a_failure(adcli, scripts):
    result = adcli(["run", "ok.ad", "bad.ad", "ok.ad"], cwd=scripts)
    assert result.code == 1
    assert result.out.count("hello 3") == 2  # the third file ran
    assert "tensor(5., grad_fn" not in result.out
    assert "tensor(5.)\nshape=[] dtype=float32 device=cpu grad_fn=<SumBackward>" in result.out
    assert "tensor([2., 4.])" in result.out
    lines = result.err.splitlines()
    assert lines[0] == "bad.ad:2:1: error: a is not two"
    assert lines[1] == 'assert allclose(a, 2), "a is not two"'
    assert lines[2].startswith("^~~~")


def test_run_fail_fast_stops_at_the_first_failure(adcli, scripts):
    result = adcli(["run", "bad.ad", "ok.ad", "--fail-fast"], cwd=scripts)
    assert result.code == 1
    assert "hello" not in result.out


def test_run_quiet_shows_only_errors(adcli, scripts):
    quiet = adcli(["run", "ok.ad", "--quiet"], cwd=scripts)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    failing = adcli(["run", "-q", "ok.ad", "bad.ad"], cwd=scripts)
    assert failing.out == ""
    assert "bad.ad:2:1: error: a is not two" in failing.err


def test_run_all_passing_exits_0(adcli, scripts):
    assert adcli(["run", "ok.ad", "ok.ad"], cwd=scripts).code == 0


def test_run_json_is_one_object_per_file(adcli, scripts):
    result = adcli(["run", "ok.ad", "bad.ad", "broken.ad", "--json"], cwd=scripts)
    assert result.code == 1
    ok, bad, broken = result.json_lines()
    assert (ok["file"], ok["ok"], ok["error"]) == ("ok.ad", True, None)
    assert [o["type"] for o in ok["outputs"]] == ["tensor", "print", "tensor"]
    assert ok["outputs"][0]["value"] == 5.0
    assert ok["outputs"][0]["grad_fn"] == "SumBackward"
    assert ok["outputs"][1]["text"] == "hello 3"
    assert ok["outputs"][2]["value"] == [2.0, 4.0]
    assert (bad["file"], bad["ok"], bad["outputs"]) == ("bad.ad", False, [])
    assert {k: bad["error"][k] for k in ("kind", "message", "line", "column")} == {
        "kind": "assert",
        "message": "a is not two",
        "line": 2,
        "column": 1,
    }
    assert (broken["ok"], broken["error"]["kind"], broken["error"]["line"]) == (
        False,
        "syntax",
        2,
    )
    assert result.err == ""


def test_run_reads_standard_input(adcli, scripts):
    result = adcli(["run", "-"], input="tensor([1., 2.]) * 3\n", cwd=scripts)
    assert result.code == 0, result.err
    assert result.out.startswith("tensor([3., 6.])")
    failing = adcli(["run", "-"], input="1\nfoo\n", cwd=scripts)
    assert failing.code == 1
    assert failing.err.startswith("<stdin>:2:1: error: ")


def test_run_junit_report(adcli, scripts):
    report = scripts / "report.xml"
    result = adcli(["run", "ok.ad", "bad.ad", "--junit", str(report)], cwd=scripts)
    assert result.code == 1
    suite = ET.parse(report).getroot()
    cases = suite.iter("testcase")
    ok, bad = list(cases)
    assert (ok.get("name"), ok.find("failure")) == ("ok.ad", None)
    failure = bad.find("failure")
    assert bad.get("name") == "bad.ad"
    assert failure.get("message") == "bad.ad:2:1: a is not two"
    assert failure.get("line") == "2"
    assert suite.get("failures") == "1"


def test_run_junit_marks_files_left_by_fail_fast_as_skipped(adcli, scripts):
    report = scripts / "report.xml"
    adcli(["run", "bad.ad", "ok.ad", "--fail-fast", "--junit", str(report)], cwd=scripts)
    cases = list(ET.parse(report).getroot().iter("testcase"))
    assert [c.get("name") for c in cases] == ["bad.ad", "ok.ad"]
    assert cases[1].find("skipped") is not None


def test_run_junit_into_a_missing_folder_is_a_usage_error(adcli, scripts):
    result = adcli(["run", "ok.ad", "--junit", "no/such/dir/r.xml"], cwd=scripts)
    assert result.code == 2


def test_run_imports_relative_to_the_script(adcli, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.ad").write_text("double(v) = 2*v\n")
    (tmp_path / "main.ad").write_text('import "lib/helpers.ad"\ndouble(tensor(21.))\n')
    result = adcli(["run", str(tmp_path / "main.ad")])
    assert result.code == 0, result.err
    assert result.out.startswith("tensor(42.)")


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_every_example_runs_and_checks_clean(example):
    ran = via_subprocess(["run", str(example), "--json"])
    assert ran.code == 0, ran.out + ran.err
    assert ran.json()["ok"] is True
    checked = via_runner(["check", str(example)])
    assert (checked.code, checked.out) == (0, f"{example}: ok\n")


def test_there_are_examples_for_each_part_of_the_tutorial():
    names = {e.name for e in EXAMPLES}
    assert {"norm_gradient.ad", "multivariable.ad", "nonscalar_mm.ad", "higher_order.ad"} <= names
    assert len(names) >= 6


# --------------------------------------------------------------------------- adcli check
def test_check_passes_a_good_file_and_reports_a_bad_one(adcli, scripts):
    (scripts / "typo.ad").write_text("x = tensor([1., 2.])\ny = sqrtt(x)\n")
    assert adcli(["check", "ok.ad"], cwd=scripts).out == "ok.ad: ok\n"
    result = adcli(["check", "ok.ad", "typo.ad"], cwd=scripts)
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0].startswith("typo.ad:2:5: error: ")
    assert "sqrtt" in lines[0]
    assert lines[1:3] == ["y = sqrtt(x)", "    ^~~~~"]


def test_check_json_and_syntax_errors(adcli, scripts):
    result = adcli(["check", "ok.ad", "broken.ad", "--json"], cwd=scripts)
    assert result.code == 1
    ok, broken = result.json_lines()
    assert ok == {"file": "ok.ad", "ok": True, "errors": []}
    assert (broken["ok"], broken["errors"][0]["kind"], broken["errors"][0]["line"]) == (
        False,
        "syntax",
        2,
    )


def test_check_does_not_run_the_program(adcli, scripts):
    result = adcli(["check", "bad.ad"], cwd=scripts)
    assert (result.code, result.out) == (0, "bad.ad: ok\n")


def test_check_reads_standard_input(adcli):
    result = adcli(["check", "-"], input="y = undefined_thing + 1\n")
    assert result.code == 1
    assert result.err.startswith("<stdin>:1:5: error: ")


# --------------------------------------------------------------------------- start-up
def test_eval_does_not_import_what_it_does_not_need():
    proc = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [sys.executable, "-X", "importtime", "-m", "adcli", "eval", "1+1"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "adcli.lang.interpreter" in imported
    # Nor Rich at all: text that it would print unstyled (off a terminal) is written plainly.
    for heavy in ("rich.console", "rich.table", "prompt_toolkit", "xml.etree", "lark", "torch"):
        assert heavy not in imported


# --------------------------------------------------------------------------- packaging
def test_man_pages_render():
    if shutil.which("man") is None:
        pytest.skip("no man here")
    for page, heading in (("adcli.1", "EXIT STATUS"), ("adcli-lang.7", "AUTOGRAD SEMANTICS")):
        proc = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
            ["man", "-l", str(REPO / "man" / page)],
            capture_output=True,
            text=True,
            env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"},
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert heading in proc.stdout


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_the_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert "pip install ." in commands[0] and "adcli run scripts/examples/" in commands[0]
    assert "pip install '.[test]'" in commands[1] and "pytest" in commands[1]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ADCLI_SLOW") != "1", reason="set ADCLI_SLOW=1 to run")
def test_readme_commands_work_in_a_fresh_virtualenv(tmp_path):
    checkout = tmp_path / "adcli"
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        "*.egg-info",
        "build",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
    )
    shutil.copytree(REPO, checkout, ignore=ignore)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "ADCLI_SLOW", "PYTHONHOME")
    }
    for command in readme_commands():
        proc = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
            ["bash", "-c", command],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (checkout / ".venv" / "share" / "man" / "man1" / "adcli.1").exists()
    assert (checkout / ".venv" / "share" / "man" / "man7" / "adcli-lang.7").exists()
