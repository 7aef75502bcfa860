"""Fixtures shared by the test files. Helpers they import live beside them
(``cli_driver``, ``repl_driver``, ``engine_cases``, ``fuzz_cases``: ``tests/`` is on
the path, see ``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

import pytest
from cli_driver import via_runner, via_subprocess


@pytest.fixture(params=["runner", "subprocess"])
def adcli(request):
    """Run adcli with arguments: in process (CliRunner), or as a real subprocess."""
    return via_runner if request.param == "runner" else via_subprocess
