"""scripts/bench/language.py runs end to end (tiny sizes; the figures are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_language_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench" / "language.py"),
            "--statements",
            "40",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--norm-elements",
            "1000",
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    for clock in ("wall", "cpu"):
        assert {"cold_us_per_op", "warm_us_per_op", "startup_s", "norm_net_s"} <= set(result[clock])
    assert result["parse_us_per_token"] > 0 and result["tokens"] > 40
