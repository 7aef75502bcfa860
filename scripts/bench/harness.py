"""The benchmark's plumbing: interleaved timing, one report per workload, machine facts.

Nothing here knows a workload; :mod:`workloads` uses it. NumPy is imported
here, so :mod:`run` settles the BLAS environment before importing this.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

#: Set to 1 to make the runner behave as if PyTorch were not installed.
NO_TORCH_ENV = "ADCLI_BENCH_NO_TORCH"


# ----- timing -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One thing to time: ``run`` is timed; ``before`` (untimed) resets state.

    ``sync`` (timed, after ``run``) waits for a GPU's queued work. ``inner``
    calls of ``run`` make one sample (for runs too short for the clock alone);
    the sample is their mean.
    """

    name: str
    run: Callable[[], object]
    before: Callable[[], None] | None = None
    sync: Callable[[], None] | None = None
    inner: int = 1


@dataclass
class Stats:
    """Seconds over the repeats of one case."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    def as_json(self) -> dict:
        return {
            "value": self.median,
            "unit": "s",
            "min": self.min,
            "max": max(self.samples),
            "repeats": len(self.samples),
        }


def _once(case: Case) -> float:
    if case.before is not None:
        case.before()
    gc.collect()
    run = case.run
    result = None
    start = time.perf_counter()
    for _ in range(case.inner):
        result = run()
    if case.sync is not None:
        case.sync()
    elapsed = time.perf_counter() - start
    # Dropping what the last run made (a graph, an array) happens outside the timed
    # region, for every contestant alike.
    del result
    return elapsed / case.inner


def interleaved(cases: list[Case], repeats: int, warmup: int = 1) -> dict[str, Stats]:
    """Time ``cases`` round-robin: warm-up rounds, then ``repeats`` rounds of a, b, a, b...

    Interleaving spreads the machine's drift (frequency, other load) evenly
    over the contestants instead of favouring whoever ran in the quiet minute.
    """
    for _ in range(warmup):
        for case in cases:
            _once(case)
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    for _ in range(repeats):
        for case in cases:
            samples[case.name].append(_once(case))
    return {name: Stats(values) for name, values in samples.items()}


def wall_times(
    commands: dict[str, list[str]],
    repeats: int,
    warmup: int = 1,
    env: dict | None = None,
    cwd: Path = REPO,
) -> dict[str, Stats | str]:
    """Median wall time of whole processes, interleaved; a failing command gives its error."""
    failed: dict[str, str] = {}

    def one(name: str, argv: list[str]) -> float | None:
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            failed[name] = f"exit {proc.returncode}: {tail[0]}"
            return None
        return elapsed

    for _ in range(warmup):
        for name, argv in commands.items():
            one(name, argv)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            if name in failed:
                continue
            t = one(name, argv)
            if t is not None:
                samples[name].append(t)
    return {name: (failed[name] if name in failed else Stats(samples[name])) for name in commands}


# ----- one workload's results ---------------------------------------------------------------------


@dataclass
class Row:
    """A line of the printed table: one comparison, or a figure with no peer."""

    label: str
    ours: str
    peer_name: str = ""
    peer: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    """What one workload measured: figures, adcli/peer ratios, targets, skips, notes."""

    key: str
    title: str
    figures: dict[str, dict] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    error: str | None = None

    def figure(self, label: str, value, unit: str = "s") -> float:
        """Record a figure (Stats, or a number with its unit); return its headline number."""
        if isinstance(value, Stats):
            self.figures[label] = value.as_json()
            return value.median
        self.figures[label] = {"value": float(value), "unit": unit}
        return float(value)

    def value(self, label: str) -> float:
        return self.figures[label]["value"]

    def compare(
        self,
        name: str,
        ours: str,
        peer: str,
        peer_name: str,
        limit: float | None = None,
        target_text: str = "",
    ) -> float:
        """Record ratio ``ours / peer`` of two recorded figures, and its target if any."""
        ratio = self.value(ours) / self.value(peer)
        self.ratios[name] = ratio
        met = None
        if limit is not None:
            met = ratio <= limit
            self.targets.append(
                {
                    "name": name,
                    "what": f"{ours} / {peer}",
                    "value": ratio,
                    "limit": limit,
                    "met": met,
                    "text": target_text or f"ratio <= {limit}",
                }
            )
        self.rows.append(
            Row(
                name,
                _fmt(self.figures[ours]),
                peer_name,
                _fmt(self.figures[peer]),
                ratio,
                target_text or (f"<= {limit}" if limit is not None else ""),
                met,
            )
        )
        return ratio

    def absolute_target(self, name: str, label: str, limit: float, text: str) -> bool:
        """A target on a figure itself (a time, a size), not on a ratio."""
        value = self.value(label)
        met = value <= limit
        self.targets.append(
            {"name": name, "what": label, "value": value, "limit": limit, "met": met, "text": text}
        )
        return met

    def show(
        self,
        label: str,
        peer_name: str = "",
        peer: str | None = None,
        target: str = "",
        met: bool | None = None,
    ) -> None:
        """A table row for a figure with no ratio (or a peer shown for context)."""
        self.rows.append(
            Row(
                label,
                _fmt(self.figures[label]),
                peer_name,
                _fmt(self.figures[peer]) if peer else "",
                None,
                target,
                met,
            )
        )

    def skip(self, what: str) -> None:
        self.skipped.append(what)

    def as_json(self) -> dict:
        out = {
            "title": self.title,
            "figures": self.figures,
            "ratios": self.ratios,
            "targets": self.targets,
            "skipped": self.skipped,
            "notes": self.notes,
        }
        if self.extra:
            out.update(self.extra)
        if self.error:
            out["error"] = self.error
        return out


def _fmt(figure: dict) -> str:
    value, unit = figure["value"], figure["unit"]
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.1f} µs"
        if value < 1:
            return f"{value * 1e3:.2f} ms"
        return f"{value:.3f} s"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    if unit == "arrays":
        return f"{value:.2f} arrays"
    if unit == "nodes":
        return f"{int(value)} nodes"
    return f"{value:g} {unit}"


# ----- peers and machine ---------------------------------------------------------------------------


def load_torch():
    """PyTorch, or None (not installed, or hidden by ADCLI_BENCH_NO_TORCH=1)."""
    if os.environ.get(NO_TORCH_ENV, "") not in ("", "0"):
        # Make `import torch` fail everywhere in this process (nth_order.py imports it too).
        sys.modules["torch"] = None  # type: ignore[assignment]
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_hidden_reason() -> str:
    if os.environ.get(NO_TORCH_ENV, "") not in ("", "0"):
        return f"torch hidden by {NO_TORCH_ENV}=1"
    return "torch is not installed (pip install 'adcli[bench]')"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def openblas_info() -> dict:
    """The OpenBLAS that NumPy loaded: its config string, core kernel and thread count."""
    info: dict = {}
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return info
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        info["library"] = path
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                try:
                    threads = getattr(lib, f"{prefix}get_num_threads{suffix}")
                    config = getattr(lib, f"{prefix}get_config{suffix}")
                    core = getattr(lib, f"{prefix}get_corename{suffix}")
                except AttributeError:
                    continue
                config.restype = ctypes.c_char_p
                core.restype = ctypes.c_char_p
                info["threads"] = int(threads())
                info["config"] = config().decode()
                info["core"] = core().decode()
                return info
    return info


def openblas_thread_setter():
    """A function that sets NumPy's OpenBLAS thread count, or None where it cannot be found."""
    path = openblas_info().get("library")
    if not path:
        return None
    lib = ctypes.CDLL(path)
    for name in (
        "scipy_openblas_set_num_threads64_",
        "openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads",
        "openblas_set_num_threads",
    ):
        setter = getattr(lib, name, None)
        if setter is not None:
            setter.argtypes = [ctypes.c_int]
            return setter
    return None


def numpy_blas_threads() -> int:
    """How many threads NumPy's BLAS uses (read from OpenBLAS, else guessed from the env)."""
    found = openblas_info().get("threads")
    if found:
        return found
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def machine_info(torch) -> dict:
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    info = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "numpy": np.__version__,
        "numpy_blas": {"name": blas.get("name"), "version": blas.get("version"), **openblas_info()},
        "torch": torch.__version__ if torch is not None else None,
        "gc_threshold": list(gc.get_threshold()),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
        info["torch_cuda"] = bool(torch.cuda.is_available())
    try:
        import adcli

        info["adcli"] = adcli.__version__
    except ImportError:
        pass
    return info


def python_env() -> dict:
    """The environment for child processes: this repo importable, the same BLAS settings."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    return env
