"""The benchmark suite's smoke mode runs end to end and writes complete JSON.

``scripts/bench/run.py --quick`` is run in a subprocess twice: as found (with
PyTorch where it is installed) and with ADCLI_BENCH_NO_TORCH=1, which makes the
runner act as if PyTorch were missing. Figures are not checked against targets
here (timings on CI machines mean little); only that every workload reported
numbers, and that missing peers are said to be skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "scripts" / "bench" / "run.py"
WORKLOADS = [
    "per_op",
    "norm",
    "mixed",
    "mm",
    "nth_order",
    "startup",
    "memory",
    "interpreter",
    "linalg",
]
HAVE_TORCH = importlib.util.find_spec("torch") is not None

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, hide_torch: bool) -> dict:
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env.pop("ADCLI_BENCH_NO_TORCH", None)
    if hide_torch:
        env["ADCLI_BENCH_NO_TORCH"] = "1"
    # --keep-blas-env: the test leaves the machine's OpenBLAS settings alone.
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--quick", "--keep-blas-env", "--json-out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def _numbers(figures: dict) -> list[float]:
    return [f["value"] for f in figures.values() if isinstance(f.get("value"), (int, float))]


def _check_common(data: dict) -> None:
    assert data["quick"] is True
    machine = data["machine"]
    for key in ("cpu_model", "cores", "python", "numpy", "torch"):
        assert key in machine
    assert data["blas_env"]["action"] in ("none of them was set", "kept as found (--keep-blas-env)")
    workloads = data["workloads"]
    for key in WORKLOADS:
        assert key in workloads, key
        report = workloads[key]
        assert "error" not in report, (key, report.get("error"), report.get("traceback"))
        numbers = _numbers(report["figures"])
        assert numbers, f"{key} reported no figures"
        assert all(isinstance(v, (int, float)) for v in numbers)
        assert all(isinstance(v, (int, float)) for v in report["ratios"].values())
    # The GPU workload is present and says why it did not run.
    assert "cuda" in workloads and workloads["cuda"]["skipped"]
    for target in data["targets"]:
        assert isinstance(target["value"], (int, float)) and isinstance(target["met"], bool)


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch (the `bench` extra) is not installed")
def test_quick_run_with_torch(tmp_path):
    data = _run(tmp_path, hide_torch=False)
    _check_common(data)
    assert data["torch_available"] is True and data["machine"]["torch"]
    ratios = data["workloads"]
    # adcli/PyTorch ratios exist wherever PyTorch is the peer.
    assert any("torch" in name for name in ratios["per_op"]["ratios"])
    assert any("torch" in name for name in ratios["norm"]["ratios"])
    assert any("torch" in name for name in ratios["mm"]["ratios"])
    assert "adcli/torch peak" in ratios["memory"]["ratios"]
    assert "python -c 'import torch'" in ratios["startup"]["figures"]


def test_quick_run_without_torch(tmp_path):
    data = _run(tmp_path, hide_torch=True)
    _check_common(data)
    assert data["torch_available"] is False and data["machine"]["torch"] is None
    assert any("torch" in note for note in data["skipped"])
    for key in ("per_op", "norm", "mixed", "mm", "nth_order", "startup", "memory"):
        report = data["workloads"][key]
        assert not any("torch" in name for name in report["ratios"]), key
        assert any("torch" in s.lower() for s in report["skipped"]), (key, report["skipped"])
