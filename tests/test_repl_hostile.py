"""The REPL survives everything: errors of every kind, limits, garbage, huge outputs and
Ctrl-C in the middle of a long computation; driven for real through a pty (pexpect)."""

from __future__ import annotations

import time

import pytest

pexpect = pytest.importorskip("pexpect")

from repl_driver import READY, spawn

NESTED_ORDER = 'd = grad(sum(sin(x) * exp(x) * tanh(x)), x, order=40, method="nested")'


@pytest.fixture
def repl(tmp_path):
    children = []

    def start(*args: str):
        children.append(spawn(tmp_path, *args, "repl"))
        return children[-1]

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def enter(child, line: str, *expected: str) -> str:
    """Type a line, wait for each expected pattern, then for a fresh prompt; what was shown."""
    child.sendline(line)
    seen = ""
    for pattern in expected:
        child.expect(pattern)
        seen += child.before + child.after
    child.expect(READY)
    return seen + child.before


def leave(child) -> int:
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


HOSTILE = [
    ("ones(2) + ones(3)", "error: shapes"),
    ("zeros(100000, 100000)", "error: a tensor of shape"),
    ('__import__("os")', "error: unknown function"),
    ("kept.__class__", "error: a tensor has no attribute"),
    ("π = 1", "error: invalid character"),
    ("f(1, [2, 3)", "error: closing"),
    ('import "/etc/passwd"', "error: import takes only .ad files"),
    ("(" * 300 + "1" + ")" * 300, "error: expression nested too deeply"),
    ("-" * 3000 + "1", "error: expression nested too deeply"),
    ("kept.backward()", "error: element 0 of tensors does not require grad"),
    ('print("unterminated', "error: unterminated string"),
]


def test_errors_of_every_kind_leave_the_session_as_it_was(repl):
    child = repl()
    enter(child, "kept = tensor(42.)")
    for line, message in HOSTILE:
        shown = enter(child, line, message)
        assert "Traceback" not in shown, line
    enter(child, "kept", r"tensor\(42\.\)")
    enter(child, ":vars", "kept")
    assert leave(child) == 0


def test_a_million_numbers_are_summarised_not_printed(repl):
    child = repl()
    shown = enter(child, "seed(0); randn(1000, 1000)", r"shape=\[1000, 1000\]")
    assert "..." in shown
    assert len(shown) < 5000
    assert leave(child) == 0


def test_ctrl_c_in_a_long_backward_pass_keeps_the_session_and_grad_mode(repl):
    child = repl()
    enter(child, "kept = tensor(42.)")
    enter(child, "x = ones(3, requires_grad=true)")
    child.sendline(NESTED_ORDER)  # nested reverse passes: minutes of work
    time.sleep(1.5)
    started = time.monotonic()
    child.sendcontrol("c")
    child.expect("interrupted", timeout=15)
    child.expect(READY)
    assert time.monotonic() - started < 10
    enter(child, "kept", r"tensor\(42\.\)")
    enter(child, "(x * 2).grad_fn", "MulBackward")  # recording is on again
    enter(child, "y = sum(x^2); y.backward(); x.grad", r"tensor\(\[2\., 2\., 2\.\]\)")
    assert leave(child) == 0


def test_limits_timeout_and_anomaly_options_reach_the_repl(repl):
    child = repl("--max-elements", "10", "--timeout", "1", "--detect-anomaly")
    enter(child, "ones(11)", "over the limit of 10", "--max-elements")
    enter(child, "x = ones(3, requires_grad=true)")
    started = time.monotonic()
    enter(child, NESTED_ORDER, "ran past the time limit of 1 s")
    assert time.monotonic() - started < 10
    enter(child, "sqrt(tensor(-1.))", r"anomaly: forward of 'sqrt'")
    enter(child, "ones(10)", r"tensor\(\[1\.")
    assert leave(child) == 0
