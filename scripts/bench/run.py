"""adcli's benchmark suite: adcli next to its peers, in one run, one table, one JSON file.

    python scripts/bench/run.py [--quick] [--json-out PATH] [--only NAME,...] [--cuda]

Workloads (names for --only, or their numbers): 1 per_op, 2 norm, 3 mixed, 4 mm,
5 nth_order, 6 startup, 7 memory, 8 interpreter, 9 cuda (only with --cuda), 10 linalg.
Ratios are adcli / peer: below 1 is better for adcli. PyTorch is optional (the
`bench` extra); without it the suite runs and lists the comparisons it skipped.
ADCLI_BENCH_NO_TORCH=1 makes it behave as if PyTorch were not installed.

OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when NumPy is imported, and
on this kind of machine they select slower kernels; by default they are removed
from the environment before NumPy is imported (for this process and the ones it
starts). --keep-blas-env leaves them. The JSON says which was done.
"""

from __future__ import annotations

import os
import sys

# ----- before NumPy is imported: the BLAS environment ---------------------------------------------
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_found_blas_env = {name: os.environ.get(name) for name in BLAS_ENV_VARS}
_keep_blas_env = "--keep-blas-env" in sys.argv
if not _keep_blas_env:
    for _name in BLAS_ENV_VARS:
        os.environ.pop(_name, None)

import argparse
import gc
import json
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))  # the repo root: adcli importable without installing

from harness import REPO, Report, load_torch, machine_info, torch_hidden_reason

ORDER = [
    "per_op",
    "norm",
    "mixed",
    "mm",
    "nth_order",
    "startup",
    "memory",
    "interpreter",
    "cuda",
    "linalg",
]


def _blas_env_record() -> dict:
    set_before = {k: v for k, v in _found_blas_env.items() if v is not None}
    if not set_before:
        action = "none of them was set"
    elif _keep_blas_env:
        action = "kept as found (--keep-blas-env)"
    else:
        action = "unset before importing numpy (this process and its children)"
    return {"variables": list(BLAS_ENV_VARS), "found": _found_blas_env, "action": action}


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode: tiny sizes, 2 repeats (used by the test suite)",
    )
    p.add_argument(
        "--json-out",
        type=Path,
        default=REPO / "bench-results.json",
        help="where to write the JSON results (default: bench-results.json)",
    )
    p.add_argument(
        "--only", default="", help="comma-separated workload names or numbers, e.g. norm,mm or 2,4"
    )
    p.add_argument(
        "--cuda",
        action="store_true",
        help="also run workloads 2-4 on the GPU (needs CuPy, a GPU, torch with CUDA)",
    )
    p.add_argument(
        "--keep-blas-env",
        action="store_true",
        help="leave OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as they are",
    )
    args = p.parse_args(argv)
    chosen = ORDER
    if args.only:
        chosen = []
        for item in args.only.split(","):
            item = item.strip()
            if item.isdigit() and 1 <= int(item) <= len(ORDER):
                item = ORDER[int(item) - 1]
            if item not in ORDER:
                p.error(f"unknown workload {item!r}; choose from {', '.join(ORDER)}")
            chosen.append(item)
    args.chosen = [w for w in ORDER if w in chosen]
    return args


def _table(report: Report):
    from rich.table import Table

    table = Table(title=report.title, title_justify="left", show_lines=False)
    table.add_column("case")
    table.add_column("adcli", justify="right")
    table.add_column("peer")
    table.add_column("peer time/size", justify="right")
    table.add_column("adcli/peer", justify="right")
    table.add_column("target")
    table.add_column("", justify="center")
    for row in report.rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        mark = "" if row.met is None else ("[green]met[/]" if row.met else "[red]MISSED[/]")
        table.add_row(row.label, row.ours, row.peer_name, row.peer, ratio, row.target, mark)
    return table


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 150)
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    torch = load_torch()
    import workloads

    settings = workloads.Settings(quick=args.quick, torch=torch, cuda=args.cuda)
    # Everything imported so far (torch alone is ~10^5 objects) lives for the whole run:
    # move it out of the collector's sight, so the gc.collect() before each sample and the
    # automatic collections during one stay cheap and do not add noise.
    gc.collect()
    gc.freeze()
    skipped: list[str] = []
    if torch is None:
        skipped.append(f"every PyTorch comparison: {torch_hidden_reason()}")
        console.print(f"[yellow]PyTorch comparisons skipped: {torch_hidden_reason()}[/]")
    results: dict[str, dict] = {}
    all_targets: list[dict] = []
    for key in args.chosen:
        t0 = time.perf_counter()
        try:
            report = workloads.WORKLOADS[key](settings)
        except Exception as exc:  # noqa: BLE001 - one broken workload must not sink the rest
            report = Report(key, key)
            report.error = f"{type(exc).__name__}: {exc}"
            report.extra["traceback"] = traceback.format_exc()
            console.print(f"[red]workload {key} failed:[/] {report.error}")
        report.extra["elapsed_s"] = round(time.perf_counter() - t0, 3)
        results[key] = report.as_json()
        for target in report.targets:
            all_targets.append({"workload": key, **target})
        if report.rows:
            console.print(_table(report))
        for note in report.notes:
            console.print(f"  [dim]note:[/] {note}")
        for skip in report.skipped:
            console.print(f"  [yellow]skipped:[/] {skip}")
            skipped.append(f"{key}: {skip}")
        console.print()

    elapsed = time.perf_counter() - started
    out = {
        "schema": "adcli-bench/1",
        "command": " ".join(
            ["python", "scripts/bench/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "quick": args.quick,
        "started_at": started_at,
        "elapsed_s": round(elapsed, 2),
        "machine": {**machine_info(torch), "load_average_at_start": load_before},
        "blas_env": _blas_env_record(),
        "torch_available": torch is not None,
        "skipped": skipped,
        "targets": all_targets,
        "workloads": results,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")

    missed = [t for t in all_targets if not t["met"]]
    console.print(f"[bold]targets:[/] {len(all_targets) - len(missed)} met, {len(missed)} missed")
    for t in missed:
        console.print(
            f"  [red]missed[/] {t['workload']}: {t['name']} = {t['value']:.3g} ({t['text']})"
        )
    console.print(f"elapsed {elapsed:.1f} s; results in {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
