"""adcli as a CI pipeline drives it (cli.md v2): several files with named output and a
summary, GitHub annotations, -j N in file order, atomic reports; plus the polish of the
command line itself (help texts, usage lines, suggestions, the man page's example)."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import fields

import pytest
from cli_driver import REPO, strict_json, via_runner, via_subprocess

from adcli.lang.limits import Limits, limit_options

SUMMARY_RE = re.compile(
    r"^(\d+) files: (\d+) passed, (\d+) failed(?:, (\d+) not run)? in \d+\.\d\d s$"
)


@pytest.fixture
def scripts(tmp_path):
    (tmp_path / "a.ad").write_text('print("from a")\n1 + 1\n')
    (tmp_path / "b.ad").write_text('y = 2\nassert y == 3, "y is not 3"\n')
    (tmp_path / "c.ad").write_text('print("from c")\n')
    return tmp_path


def test_several_files_are_named_before_their_output_and_summarised(scripts):
    result = via_subprocess(["run", "a.ad", "b.ad", "c.ad"], cwd=scripts)
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[:6] == ["==> a.ad <==", "from a", "2", "==> b.ad <==", "==> c.ad <==", "from c"]
    match = SUMMARY_RE.match(lines[-1])
    assert match and match.groups()[:3] == ("3", "2", "1"), lines[-1]
    assert result.err.startswith("b.ad:2:1: error: y is not 3")


def test_one_file_has_no_header_and_no_summary(scripts):
    result = via_runner(["run", "a.ad"], cwd=scripts)
    assert result.out == "from a\n2\n"


def test_quiet_and_json_have_no_headers_or_summary(scripts):
    quiet = via_runner(["run", "a.ad", "c.ad", "--quiet"], cwd=scripts)
    assert (quiet.code, quiet.out) == (0, "")
    as_json = via_runner(["run", "a.ad", "c.ad", "--json"], cwd=scripts)
    assert [line["file"] for line in as_json.json_lines()] == ["a.ad", "c.ad"]


def test_fail_fast_summary_counts_the_files_not_run(scripts):
    result = via_runner(["run", "b.ad", "a.ad", "c.ad", "--fail-fast"], cwd=scripts)
    assert SUMMARY_RE.match(result.out.splitlines()[-1]).groups()[:4] == ("3", "0", "1", "2")


def test_github_annotations(scripts):
    (scripts / "syntax.ad").write_text("x = (1 +\n")
    result = via_subprocess(
        ["run", "a.ad", "b.ad", "syntax.ad", "--output-format", "github"], cwd=scripts
    )
    annotations = [line for line in result.out.splitlines() if line.startswith("::")]
    assert annotations[0] == "::error file=b.ad,line=2,col=1::y is not 3"
    assert re.match(r"::error file=syntax\.ad,line=1,col=5::", annotations[1]), annotations
    assert len(annotations) == 2
    checked = via_subprocess(
        ["check", "b.ad", "syntax.ad", "--output-format", "github"], cwd=scripts
    )
    assert any(
        line.startswith("::error file=syntax.ad,line=1") for line in checked.out.splitlines()
    )


def test_github_annotations_escape_their_data_and_go_to_stderr_beside_json(scripts):
    (scripts / "x,y.ad").write_text('assert false, "100% wrong: a, b"\n')
    result = via_runner(["run", "x,y.ad", "--output-format", "github", "--json"], cwd=scripts)
    strict_json(result.out.strip())
    assert result.err.strip() == "::error file=x%2Cy.ad,line=1,col=1::100%25 wrong: a, b"


def _without_times(text: str) -> str:
    return re.sub(r"in \d+\.\d\d s", "in T s", text)


def test_jobs_run_in_parallel_processes_with_output_and_reports_in_file_order(scripts):
    files = ["c.ad", "b.ad", "a.ad", "b.ad", "c.ad"]
    serial = via_subprocess(["run", *files, "--junit", "serial.xml"], cwd=scripts)
    parallel = via_subprocess(["run", *files, "-j", "3", "--junit", "parallel.xml"], cwd=scripts)
    assert parallel.code == serial.code == 1
    assert _without_times(parallel.out) == _without_times(serial.out)
    assert parallel.err == serial.err

    def cases(name):
        suite = ET.parse(scripts / name).getroot()
        return [(c.get("name"), (c.find("failure") is not None)) for c in suite.iter("testcase")]

    assert cases("parallel.xml") == cases("serial.xml")
    as_json = via_subprocess(["run", *files, "--jobs", "2", "--json"], cwd=scripts)
    assert [(line["file"], line["ok"]) for line in as_json.json_lines()] == [
        ("c.ad", True), ("b.ad", False), ("a.ad", True), ("b.ad", False), ("c.ad", True),
    ]  # fmt: skip


def test_jobs_read_standard_input_once(scripts):
    result = via_subprocess(["run", "a.ad", "-", "-j", "2"], input="print(40 + 2)\n", cwd=scripts)
    assert result.code == 0, result.err
    assert "==> <stdin> <==\n42" in result.out


def test_json_repl_prints_only_json(tmp_path):
    proc = subprocess.run(  # noqa: PLW1510 - asserted below
        ["python", "-m", "adcli", "--json", "repl"],
        input="x = 1\n:vars\n:device\n:help\n1 + 1\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**__import__("test_cli").subprocess_env()},
        timeout=120,
    )
    lines = [strict_json(line) for line in proc.stdout.splitlines()]
    assert lines[0] == {"variables": {"x": "1"}}
    assert lines[1] == {"device": "cpu"}
    assert "help" in lines[2]
    assert lines[3]["value"] == 2.0


def test_run_json_with_an_unavailable_device_prints_a_failing_line_per_file(scripts):
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed")
    except ImportError:
        pass
    result = via_runner(["--json", "--device", "cuda", "run", "a.ad", "c.ad"], cwd=scripts)
    assert result.code == 1
    lines = result.json_lines()
    assert [(line["file"], line["ok"], line["error"]["kind"]) for line in lines] == [
        ("a.ad", False, "device"),
        ("c.ad", False, "device"),
    ]


# --------------------------------------------------------------------------- options from Limits
def test_every_limit_is_a_global_option_with_its_default_in_the_help():
    text = " ".join(via_runner(["--help"]).out.split())
    options = limit_options()
    assert {o.name for o in options} == {f.name for f in fields(Limits)} - {"max_expr_depth"}
    for option in options:
        assert f"{option.flag} {option.metavar}" in text
        assert f"[default: {option.shown}]" in text


def test_every_limit_option_reaches_the_session():
    from adcli.cli.options import GlobalOptions, session_limits

    for option in limit_options():
        value = 7 if option.kind is int else 2.5
        limits = session_limits(GlobalOptions(limits={option.name: value}))
        assert getattr(limits, option.name) == value
    assert session_limits(GlobalOptions(limits={"max_depth": 7})).max_expr_depth == 70


def test_a_limit_given_after_the_command_works_too(scripts):
    (scripts / "deep.ad").write_text("x = [[[[1]]]]\n")
    for args in (
        ["--max-depth", "3", "run", "deep.ad"],
        ["run", "deep.ad", "--max-depth", "3"],
        ["--max-depth", "3", "check", "deep.ad"],
    ):
        result = via_runner(args, cwd=scripts)
        assert result.code == 1 and "nested too deeply" in result.err, result.err


# --------------------------------------------------------------------------- polish
def test_help_texts():
    root = via_runner(["--help"]).out
    assert "10 N" not in root and "ten times as deep" in " ".join(root.split())
    for command in ("eval", "run", "check", "explain", "repl"):
        usage = via_runner([command, "--help"]).out
        assert "{" not in usage.splitlines()[0], usage.splitlines()[0]
    assert via_runner(["eval", "--help"]).out.startswith("Usage: adcli eval [OPTIONS] PROGRAM\n")
    check = " ".join(via_runner(["check", "--help"]).out.split())
    assert "Scripts to check" in check and "to run in order" not in check


def test_unknown_options_get_only_close_suggestions():
    bogus = via_runner(["eval", "1", "--bogus"])
    assert bogus.code == 2 and "--cost" not in bogus.err
    typo = via_runner(["eval", "1", "--cots"])
    assert typo.code == 2 and "--cost" in typo.err
    global_typo = via_runner(["--jsno", "eval", "1"])
    assert global_typo.code == 2 and "--json" in global_typo.err


def test_the_man_page_error_example_is_what_adcli_prints():
    man = (REPO / "man" / "adcli.1").read_text()
    block = (
        man.split("Errors go to standard error:", 1)[1].split(".nf\n", 1)[1].split("\n.fi", 1)[0]
    )
    expected = block.replace("\\-", "-").replace("\\(pd", "∂")
    result = via_runner(["eval", "1 + foo(2)"])
    assert result.err.rstrip("\n") == expected


def test_run_junit_has_a_final_newline(scripts):
    via_runner(["run", "a.ad", "--junit", "r.xml"], cwd=scripts)
    assert (scripts / "r.xml").read_bytes().endswith(b"</testsuite>\n")


def test_json_error_of_a_check_is_bounded(scripts):
    (scripts / "long.ad").write_text("x = " + "y" * 100_000 + "\n")
    result = via_runner(["--json", "check", "long.ad"], cwd=scripts)
    line = result.json_lines()[0]
    assert len(json.dumps(line)) < 2_000
