"""The REPL with v2 blocks, through a pty: a statement goes on while a brace is
open, and :vars lists the functions."""

from __future__ import annotations

import pytest

pexpect = pytest.importorskip("pexpect")

from repl_driver import enter, quit_with_ctrl_d, spawn


@pytest.fixture
def repl(tmp_path):
    child = spawn(tmp_path, "repl")
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_an_open_brace_continues_the_statement(repl):
    enter(repl, "s = 0", ready=True)
    enter(repl, "for i in range(4) {", r"\.\.\.", ready=False)
    enter(repl, "  s += i", r"\.\.\.", ready=False)
    enter(repl, "}")
    enter(repl, "s", r"(?<![0-9])6\r\n")
    assert quit_with_ctrl_d(repl) == 0


def test_a_function_with_a_body_over_several_lines_and_vars(repl):
    enter(repl, "twice(x) {", r"\.\.\.", ready=False)
    enter(repl, "  y = 2 * x", r"\.\.\.", ready=False)
    enter(repl, "  return y", r"\.\.\.", ready=False)
    enter(repl, "}")
    enter(repl, "twice(21)", r"(?<![0-9])42\r\n")
    seen = enter(repl, ":vars", r"twice")
    assert "twice" in seen
    assert quit_with_ctrl_d(repl) == 0


def test_an_error_inside_a_block_keeps_the_session(repl):
    enter(repl, "if ones(2) > 0 { 1 }", "ambiguous")
    enter(repl, "if 2 > 1 { 7 }", r"(?<![0-9])7\r\n")
    assert quit_with_ctrl_d(repl) == 0
