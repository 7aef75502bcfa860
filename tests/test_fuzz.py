"""Hostile and broken input: fuzzed through a session and through the real process.

Every program, however broken, either runs or fails with an AdcliError of a
known kind, with a message in words and a line and column; never a Python
exception, a traceback or a hang. The generators live in ``fuzz_cases.py``;
the seeded corpus of nasty inputs in ``fuzz_corpus/``. The budget here is
small and fixed (derandomized); ``scripts/fuzz --examples N --seed S`` runs
longer.

Cases run: 400 generated + 300 mutated + 300 random-text programs, the
corpus (one test per file) and 36 deep or long inputs in process; about 55
runs of ``python -m adcli`` (the corpus as one ``run``, plus Hypothesis-drawn
and hand-picked command lines). A reproducer of each bug the fuzzing found is
a file in the corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import fuzz_cases as F
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adcli.errors import KINDS, AdcliError
from adcli.lang.interpreter import Limits, Session

CORPUS_FILES = sorted(F.CORPUS.glob("*.ad"))


# ------------------------------------------------------------------------ in a session
@F.fuzz_settings(400)
@given(F.programs())
def test_generated_programs_run_or_fail_cleanly(source):
    F.check_in_session(source)


@F.fuzz_settings(300)
@given(F.mutated_programs())
def test_mutated_programs_run_or_fail_cleanly(source):
    F.check_in_session(source)


@F.fuzz_settings(300)
@given(F.random_text)
def test_random_text_and_bytes_run_or_fail_cleanly(source):
    F.check_in_session(source)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_corpus_file_runs_or_fails_cleanly(path):
    session = Session(seed=0, limits=Limits(**F.FUZZ_LIMITS))
    with F.watchdog():
        try:
            session.run_file(path, emit=lambda output: None)
        except Exception as exc:  # noqa: BLE001 - checked to be a proper AdcliError
            F.check_error(exc, path.name)
            F.render_everything(session, [], exc)


DEEP = {
    "parens": lambda n: "(" * n + "1" + ")" * n,
    "brackets": lambda n: "[" * n + "1" + "]" * n,
    "calls": lambda n: "sin(" * n + "1" + ")" * n,
    "unclosed": lambda n: "(" * n + "1",
    "closing": lambda n: "1" + ")" * n,
    "unary": lambda n: "-" * n + "1",
    "power": lambda n: "2" + "^1" * n,
    "attributes": lambda n: "ones(2)" + ".T" * n,
    "methods": lambda n: "ones(2)" + ".detach()" * n,
    "indexes": lambda n: "ones(2)" + "[0:2]" * n,
    "sum": lambda n: "1" + "+1" * n,
    "product": lambda n: "x = ones(2, requires_grad=true); y = sum(x" + " * 1.0001" * n + ")",
}


@pytest.mark.parametrize("size", [10, 1999, 30_000])
@pytest.mark.parametrize("family", sorted(DEEP))
def test_deep_and_long_input_is_a_value_or_a_limit_error(family, size):
    source = DEEP[family](size)
    err = F.check_in_session(source, limits={**F.FUZZ_LIMITS, "max_elements": 10**6})
    if err is not None:
        assert err.kind in ("limit", "syntax", "shape", "type"), err.message


def test_the_depth_limit_comes_before_pythons_recursion_limit():
    """A deep expression is refused by the evaluator, at the node that went too deep."""
    session = Session()
    with pytest.raises(AdcliError) as caught:
        session.run("x = " + "-" * 5000 + "1")
    err = caught.value
    assert err.kind == "limit"
    assert err.message == "expression nested too deeply (limit 2000)"
    assert (err.span.line, err.span.column) == (1, 5 + 2000)
    assert "--max-depth" in err.hint
    # Just under the limit works, whatever Python's own recursion limit is.
    assert session.run("-" * 1990 + "1") == 1


# --------------------------------------------------------------------- the real process
def _args(path):
    return str(path.relative_to(F.CORPUS))


def test_whole_corpus_through_adcli_run_json():
    proc = F.run_adcli(["--json", "--timeout", "3", "run", *map(_args, CORPUS_FILES)], cwd=F.CORPUS)
    objects = F.check_process(proc, json_mode=True, where="run --json corpus")
    assert proc.returncode == 1
    assert [o["file"] for o in objects] == [p.name for p in CORPUS_FILES]
    failed = {o["file"]: o["error"] for o in objects if not o["ok"]}
    assert failed["shape_mismatch.ad"]["kind"] == "shape"
    assert failed["alloc_zeros.ad"]["kind"] == "limit"
    assert failed["probe_import.ad"]["kind"] == "name"
    assert failed["import_passwd.ad"]["kind"] == "value"
    cycle = failed["cycle_a.ad"]  # found at the import that closes the loop
    assert (cycle["kind"], cycle["file"], cycle["line"]) == ("value", "cycle_b.ad", 1)
    assert "import cycle: cycle_a.ad -> cycle_b.ad -> cycle_a.ad" in cycle["message"]
    assert failed["nested_order.ad"]["message"].startswith("the computation ran past")
    assert failed["invalid_utf8.ad"] == {**failed["invalid_utf8.ad"], "line": 2, "column": 5}
    assert "huge_output.ad" not in failed and "empty.ad" not in failed


def test_whole_corpus_through_adcli_run_for_people():
    proc = F.run_adcli(["run", *map(_args, CORPUS_FILES), "--timeout", "3"], cwd=F.CORPUS)
    F.check_process(proc, json_mode=False, where="run corpus")
    assert proc.returncode == 1
    err = proc.stderr.decode()
    headers = [line for line in err.splitlines() if ": error: " in line]
    ok = {
        "bom.ad", "crlf.ad", "deep_calls.ad", "empty.ad", "huge_literals.ad", "huge_output.ad",
        "import_target.ad", "long_line.ad", "long_name.ad", "long_string.ad", "only_comments.ad",
        "print_huge.ad", "semicolons.ad", "tabs_formfeed.ad", "unicode_in_string.ad",
        "big_int_where.ad",
    }  # fmt: skip
    assert len(headers) == len(CORPUS_FILES) - len(ok)
    for header in headers:  # file:line:column: error: message, every one with a place
        _file, line, column, _ = header.split(":", 3)
        assert int(line) >= 1 and int(column) >= 1, header
    # A million numbers are summarised, not printed.
    assert len(proc.stdout) < 200_000


@pytest.mark.parametrize("json_mode", [False, True], ids=["people", "json"])
def test_whole_corpus_through_adcli_check(json_mode):
    args = ["--json"] if json_mode else []
    proc = F.run_adcli([*args, "check", *map(_args, CORPUS_FILES)], cwd=F.CORPUS)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr.decode()
    if json_mode:
        for line in proc.stdout.decode().splitlines():
            for error in json.loads(line)["errors"]:
                F.check_error_object(error, line)


@F.fuzz_settings(12)
@given(F.programs(), st.booleans())
def test_generated_one_liners_through_adcli_eval(source, json_mode):
    one_liner = source.replace("\n", "; ")
    args = ["--json"] if json_mode else []
    proc = F.run_adcli([*args, "--timeout", "10", "eval", "--", one_liner])
    F.check_process(proc, json_mode=json_mode, where=repr(one_liner))


@F.fuzz_settings(10)
@given(st.one_of(F.mutated_programs(), F.random_text), st.booleans())
def test_mutated_and_random_files_through_adcli_run(tmp_path_factory, source, json_mode):
    script = tmp_path_factory.mktemp("fuzz") / "fuzz.ad"
    script.write_bytes(source.encode("utf-8", "surrogateescape"))
    args = ["--json"] if json_mode else []
    proc = F.run_adcli([*args, "--timeout", "10", "run", str(script)], cwd=F.CORPUS)
    F.check_process(proc, json_mode=json_mode, where=repr(source))


@F.fuzz_settings(6)
@given(st.binary(max_size=300))
def test_random_bytes_on_standard_input(data):
    proc = F.run_adcli(["--json", "run", "-"], input=data)
    F.check_process(proc, json_mode=True, where=repr(data))


ONE_LINERS = {
    "shape": "ones(2) + ones(3)",
    "device": 'ones(2).to("cuda")',
    "limit": "zeros(100000, 100000)",
    "name": '__import__("os")',
    "syntax": "f(1, [2, 3)",
    "type": "sin(1, 2)",
    "value": "x = ones(3, requires_grad=true); y = x * 2; y.backward()",
}


@pytest.mark.parametrize("kind", sorted(ONE_LINERS))
def test_each_kind_of_error_through_adcli_eval_json(kind):
    proc = F.run_adcli(["eval", ONE_LINERS[kind], "--json"])
    (obj,) = F.check_process(proc, json_mode=True, where=kind)
    assert proc.returncode == 1
    assert obj["error"]["kind"] == kind
    assert obj["error"]["code"] == KINDS[kind]


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "--", "-" * 5000 + "1"],
        ["eval", "(" * 100_000],
        ["eval", "x", "--at", "x=" + "-" * 5000 + "1"],
        ["--device", "cuda:" + "9" * 5000, "eval", "1"],
        ["run", "no/such/file.ad"],
        ["run", "."],
        ["--max-elements", "0", "eval", "1"],
        ["--max-depth", "many", "eval", "1"],
        ["--timeout", "-1", "eval", "1"],
        ["explain", "E999"],
        ["run", "/dev/zero"],
        ["check", "/dev/zero"],
        ["--max-source-bytes", "100", "run", "-"],
        ["eval", "1", "--order", "0"],
        ["repl"],
    ],
    ids=[
        "deep-unary-eval",
        "unclosed-eval",
        "deep-at",
        "device-digits",
        "missing-file",
        "directory",
        "zero-limit",
        "bad-limit",
        "negative-timeout",
        "unknown-code",
        "endless-file",
        "endless-file-check",
        "stdin-over-limit",
        "order-zero",
        "repl-garbage",
    ],
)
def test_hostile_command_lines_end_with_a_status_not_a_traceback(args):
    if "/dev/zero" in args and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    garbage = "\x00\xff(((\n1 +\n" + ")" * 300 + "\nπ = 1\nzeros(10^12)\n"
    proc = F.run_adcli(args, input=garbage.encode("utf-8", "surrogateescape"))
    F.check_process(proc, json_mode=False, where=" ".join(args)[:200])
    assert proc.returncode != 0 or args == ["repl"]


def test_device_error_from_the_command_line_has_null_place_in_json():
    proc = F.run_adcli(["--json", "--device", "cuda:999999", "eval", "1"])
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert (error["kind"], error["line"], error["column"]) == ("device", None, None)
