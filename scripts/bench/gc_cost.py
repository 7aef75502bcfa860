"""Time the cyclic garbage collector spends while a graph is recorded, per op.

    python scripts/bench/gc_cost.py [--ops 30000]

Builds ``y = sin(y) * 1.0001 + x`` chains (3 ops a line) under the collector's
default thresholds (700, 10, 10) and under the engine's (100000, 20, 20), and
reports collections and the seconds spent in them (measured with
``gc.callbacks``, so the rest of a noisy machine's load does not count). This
is the benchmark behind the thresholds set in ``adcli/engine/__init__.py``;
memory does not depend on them, since no reference cycle holds an array
(tests/test_memory.py runs under both).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import adcli.engine as E

_spent = [0.0, 0]
_start = [0.0]


def _callback(phase, info) -> None:
    if phase == "start":
        _start[0] = time.perf_counter()
    else:
        _spent[0] += time.perf_counter() - _start[0]
        _spent[1] += 1


def measure(threshold: tuple, lines: int, repeats: int = 3) -> tuple:
    gc.set_threshold(*threshold)
    gc.collect()
    best = None
    for _ in range(repeats):
        _spent[0], _spent[1] = 0.0, 0
        x = E.tensor([1.0, 2.0], requires_grad=True)
        y = x
        for _ in range(lines):
            y = E.sin(y) * 1.0001 + x
        E.sum(y).backward()
        del x, y
        found = (_spent[0], _spent[1])
        best = found if best is None or found < best else best
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=30_000)
    args = parser.parse_args()
    lines = max(1, args.ops // 3)
    saved = gc.get_threshold()
    gc.callbacks.append(_callback)
    try:
        for threshold in ((700, 10, 10), (100_000, 20, 20)):
            seconds, count = measure(threshold, lines)
            per_op = seconds / (3 * lines) * 1e6
            print(
                f"ops={3 * lines} threshold={threshold}: {count} collections, "
                f"{seconds * 1e3:.1f} ms in the collector = {per_op:.2f} us/op"
            )
    finally:
        gc.callbacks.remove(_callback)
        gc.set_threshold(*saved)


if __name__ == "__main__":
    main()
