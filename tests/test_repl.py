"""The REPL, driven for real through a pseudo-terminal (pexpect), and off a terminal."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from adcli.cli.repl import completions, history_path

pexpect = pytest.importorskip("pexpect")

from repl_driver import LONG, READY, enter, quit_with_ctrl_d, repl_env, spawn


@pytest.fixture
def repl(tmp_path):
    child = spawn(tmp_path, "repl")
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_values_continuation_lines_and_errors(repl):
    enter(repl, "x = tensor([1., 2.], requires_grad=true)")
    enter(repl, "sum(x^2)", r"tensor\(5\.\)", "grad_fn=<SumBackward>")
    # An open bracket continues the statement on the next line...
    enter(repl, "y = [3,", r"\.\.\.", ready=False)
    enter(repl, "4]")
    enter(repl, "x + y", r"tensor\(\[4\., 6\.\]\)")
    # ...while a complete line that does not parse is a syntax error, and the session goes on.
    before = enter(repl, "1 +", "error: ", r"\^")
    assert "<stdin>:1:4: " in before
    enter(repl, "nope(1)", "<stdin>:1:1: error: ")
    enter(repl, "x * 10", r"tensor\(\[10\., 20\.\]")
    assert quit_with_ctrl_d(repl) == 0


def test_ctrl_c_clears_the_line_being_typed(repl):
    repl.send("undefined_name_here")
    repl.sendcontrol("c")
    repl.expect(READY)
    before = enter(repl, "shape(tensor([1., 2., 3.]))", r"\[3\]")
    assert "error" not in before
    assert quit_with_ctrl_d(repl) == 0


def test_ctrl_c_interrupts_a_computation_and_keeps_the_session(repl):
    enter(repl, "kept = tensor(42.)")
    for definition in LONG:
        enter(repl, definition)
    repl.sendline("a = randn(200, 200); b = f10(a)")
    time.sleep(1.5)
    started = time.monotonic()
    repl.sendcontrol("c")
    repl.expect("interrupted", timeout=15)
    repl.expect(READY)
    assert time.monotonic() - started < 10
    enter(repl, "kept", r"tensor\(42\.\)")
    assert quit_with_ctrl_d(repl) == 0


def test_colon_commands(repl, tmp_path):
    enter(repl, ":help", ":vars", ":reset", ":device", ":quit")
    enter(repl, "w = ones(3, requires_grad=true)")
    before = enter(repl, ":vars", r"w\s.*shape=\[3\] dtype=float32 device=cpu")
    assert "variables" in before
    enter(repl, ":device", "device: cpu")
    enter(repl, ":reset", "session reset")
    enter(repl, "w", "error: .*'w'")
    enter(repl, ":frobnicate", "error: unknown command ':frobnicate'")
    enter(repl, "tensor(1.) + 1", r"tensor\(2\.\)")
    repl.sendline(":quit")
    repl.expect(pexpect.EOF)
    repl.close()
    assert repl.exitstatus == 0


def test_device_errors_are_shown_not_fatal(repl):
    from adcli.backend import cuda_available

    if cuda_available():
        pytest.skip("a GPU is present")
    enter(repl, ":device cuda", "error: device 'cuda'")
    enter(repl, ":device", "device: cpu")
    enter(repl, "tensor(3.) * 2", r"tensor\(6\.\)")
    assert quit_with_ctrl_d(repl) == 0


def test_tab_completes_names_and_attributes(repl):
    enter(repl, "my_long_variable = tensor([7., 8.])")
    repl.send("my_long_v\t")
    time.sleep(0.3)
    enter(repl, "", r"tensor\(\[7\., 8\.\]\)")
    repl.send("my_long_variable.is_le\t")
    time.sleep(0.3)
    enter(repl, "", "true")
    assert quit_with_ctrl_d(repl) == 0


def test_history_is_kept_under_the_state_directory(repl, tmp_path):
    enter(repl, "remembered = 12345 + 0")
    assert quit_with_ctrl_d(repl) == 0
    history = tmp_path / "state" / "adcli" / "history"
    assert "remembered = 12345 + 0" in history.read_text()
    # Up-arrow brings it back in a new session.
    child = spawn(tmp_path, "repl")
    child.send("\x1b[A")
    time.sleep(0.3)
    enter(child, "")
    enter(child, "remembered", "12345")  # the echo of "remembered" has no digits
    assert quit_with_ctrl_d(child) == 0


def test_history_falls_back_to_home_local_state(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert history_path() == tmp_path / ".local" / "state" / "adcli" / "history"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/is/ignored")
    assert history_path() == tmp_path / ".local" / "state" / "adcli" / "history"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert history_path() == tmp_path / "xdg" / "adcli" / "history"


def test_plain_adcli_on_a_terminal_starts_the_repl(tmp_path):
    child = spawn(tmp_path)
    enter(child, "tensor([1., 2.]) * 2", r"tensor\(\[2\., 4\.\]\)")
    assert quit_with_ctrl_d(child) == 0


def test_repl_off_a_terminal_reads_statements_from_standard_input():
    program = "x = [1,\n2]\nx * 3\n1 +\nfoo\n:vars\nx + 1\n"
    proc = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [sys.executable, "-m", "adcli", "repl"],
        input=program,
        capture_output=True,
        text=True,
        env=repl_env(Path("/nonexistent")),
        timeout=60,
    )
    assert proc.returncode == 0
    assert "tensor([3., 6.])" in proc.stdout
    assert "tensor([2., 3.])" in proc.stdout
    assert "ad>" not in proc.stdout  # no prompts off a terminal
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2
    assert errors[0].startswith("<stdin>:1:4: error: ")
    assert errors[1].startswith("<stdin>:1:1: error: ")


def test_repl_json_mode_prints_one_object_per_output():
    from typer.testing import CliRunner

    from adcli.cli.app import app

    result = CliRunner().invoke(app, ["repl", "--json"], input='tensor(2.)\nprint("hi")\nfoo\n')
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert '"value": 2.0' in lines[0]
    assert lines[1] == '{"type": "print", "text": "hi"}'
    assert '"kind": "name"' in lines[2]


class FakeSession:
    def __init__(self, found):
        self.found = found
        self.asked = []

    def completions(self, prefix):
        self.asked.append(prefix)
        return self.found


def test_completions_replace_what_they_complete():
    # A completion that repeats the whole prefix replaces it all...
    session = FakeSession(["x.grad", "x.grad_fn"])
    assert completions(session, "y = x.gr") == [("x.grad", 4), ("x.grad_fn", 4)]
    assert session.asked == ["x.gr"]
    # ...one that is only the attribute replaces what follows the dot.
    assert completions(FakeSession(["grad"]), "x.gr") == [("grad", 2)]
    assert completions(FakeSession(["sqrt", "sum"]), "1 + s") == [("sqrt", 1), ("sum", 1)]
    assert completions(FakeSession(["x"]), "1 + ") == []
    assert completions(FakeSession([]), ":va") == [(":vars", 3)]


def test_completions_from_the_real_session():
    from adcli.lang.interpreter import Session

    session = Session()
    session.run("my_tensor = ones(2)")
    assert ("my_tensor", 4) in completions(session, "my_t")
    assert ("my_tensor.requires_grad", len("my_tensor.req")) in completions(
        session, "my_tensor.req"
    )
