"""Pasting a long bracket literal into the REPL: time per size, against ``adcli run``.

    python scripts/bench/repl_paste.py [LINES ...]     (default: 1000 2000 4000)

Each size is ``x = [`` + LINES lines of ``1,`` + ``]`` + ``sum(x)``, fed to
``adcli repl`` on standard input (the same continuation logic as a terminal
paste) and to ``adcli run -``. Continuation is linear when the REPL's time grows
with LINES like run's does (issue 14: 2,000 lines took 11.7 s, 4,000 took 47 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def seconds(args: list[str], text: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "adcli", *args],
        input=text,
        text=True,
        capture_output=True,
        check=True,
        env=env,
    )
    return time.perf_counter() - started


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 2000, 4000]
    print(f"{'lines':>6} {'repl s':>8} {'run s':>8}")
    for lines in sizes:
        text = "x = [\n" + "1,\n" * lines + "]\nsum(x)\n"
        print(f"{lines:>6} {seconds(['repl'], text):8.2f} {seconds(['run', '-'], text):8.2f}")


if __name__ == "__main__":
    main()
