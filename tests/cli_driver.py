"""Running adcli in tests: in process through Typer's CliRunner, or as a real
``python -m adcli`` subprocess with this checkout on its path; results with strict
JSON parsing. Shared by the CLI test files (the ``adcli`` fixture is in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from adcli.cli.app import app

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        """The single JSON object on stdout, parsed strictly (a bare NaN fails)."""
        lines = self.out.splitlines()
        assert len(lines) == 1, self.out
        return strict_json(lines[0])

    def json_lines(self) -> list[dict]:
        return [strict_json(line) for line in self.out.splitlines()]


def strict_json(text: str) -> dict:
    def refuse(constant: str):
        raise AssertionError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def subprocess_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("FORCE_COLOR", None)
    env.update(extra or {})
    return env


def via_runner(args, input=None, env=None, cwd=None) -> Result:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), input=input, env=env)
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


def via_subprocess(args, input=None, env=None, cwd=None) -> Result:
    proc = subprocess.run(  # noqa: PLW1510 - the exit status is asserted
        [sys.executable, "-m", "adcli", *args],
        input=input,
        capture_output=True,
        text=True,
        env=subprocess_env(env),
        cwd=cwd or REPO,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
