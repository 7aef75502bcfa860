"""Driving the REPL for real through a pseudo-terminal (pexpect): shared by the REPL
test files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parent.parent
PROMPT = "ad>"
# A fresh, empty prompt: the line editor draws "ad>" and then moves the cursor (an escape);
# the redraw of an accepted line is "ad> " followed by its text.
READY = r"ad>\x1b\["
# f10 makes 4^9 products of 200x200 matrices: half a minute of work, unless interrupted.
LONG = [
    "f1(x) = tanh(x @ x)",
    *(f"f{n}(x) = f{n - 1}(f{n - 1}(f{n - 1}(f{n - 1}(x))))" for n in range(2, 11)),
]


def repl_env(tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        HOME=str(tmp_path / "home"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        NO_COLOR="1",
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",  # pexpect does not answer cursor-position queries
    )
    env.update(extra)
    return env


def spawn(tmp_path: Path, *args: str, **env: str):
    child = pexpect.spawn(
        sys.executable,
        ["-m", "adcli", *args],
        env=repl_env(tmp_path, **env),
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 160),
    )
    child.expect("Type :help for help")
    child.expect(READY)
    return child


def enter(child, line: str, *expected: str, ready: bool = True) -> str:
    """Type a line, wait for each expected pattern in turn, then for a fresh prompt.

    Returns everything shown in between. Waiting for the prompt matters: a key sent
    while a statement runs goes to the terminal in cooked mode (^D, ^C mean other things).
    """
    child.sendline(line)
    seen = ""
    for pattern in expected:
        child.expect(pattern)
        seen += child.before + child.after
    if ready:
        child.expect(READY)
        seen += child.before
    return seen


def quit_with_ctrl_d(child) -> int:
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus
