"""Speed through the language (issue 15): `adcli run` against a PyTorch .py file.

    python scripts/bench/language.py [--torch-python PY] [--repeats N] [--warmup N]
                                     [--statements N] [--norm-elements N]
                                     [--baseline DIR] [--json-out PATH]

Whole processes, interleaved (each round runs every command once), medians:

* cold: a 20,000-statement script of elementwise ops on a 1-element float64
  tensor, then backward, `adcli --no-cache run` (parsed every time), per op and
  net of start-up (`adcli run` of a one-line script), against the same ops in a
  .py file on PyTorch (compiled and run, timed inside the process, so
  PyTorch's own start-up is left out);
* warm: the same script with the cache of parsed scripts primed;
* start-up: `adcli eval "1+1"` against the import floor `python -c "import
  numpy, rich, typer, lark"` measured in the same rounds;
* norm: 10^7-element randn, sqrt(sum(x^2)), backward, five times in one
  script, net of start-up, against the same in a .py file on PyTorch (one
  thread: NumPy's elementwise work runs on one);
* parse: microseconds per token of the in-process parse of the cold script
  (best of several) and the peak memory of one parse (tracemalloc) per byte
  of source, and the same of --baseline DIR (an older checkout) for comparison.

Each figure is given twice: from the medians of each command (a run's median less
the one-line run's median, over torch's median), and worked out within each round
(a run less the one-line run of the same round, over the torch run of that round),
then the median over the rounds, which a slow moment of a shared machine, lasting a
round, disturbs less. The JSON has every round's samples.

PyTorch runs in the interpreter given by --torch-python (default: this one);
without it the ratios are left out and the absolute figures remain. Ratios
are adcli / torch: below 1 is better for adcli.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import REPO, python_env

OPS = ["y = y * 1.0001", "y = sin(y)", "y = y + 0.0001", "y = y - 0.0001"]
TORCH_OPS = ["y = y * 1.0001", "y = torch.sin(y)", "y = y + 0.0001", "y = y - 0.0001"]


def chain_ad(n: int) -> str:
    head = 'x = tensor([1.5], dtype="float64", requires_grad=true)\ny = x\n'
    return head + "".join(OPS[i % 4] + "\n" for i in range(n)) + "y.backward()\n"


def chain_py(n: int) -> str:
    head = "x = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)\ny = x\n"
    body = "".join(TORCH_OPS[i % 4] + "\n" for i in range(n))
    return head + body + "y.backward()\n"


def norm_ad(elements: int) -> str:
    step = f"x = randn({elements}, requires_grad=true)\ny = sqrt(sum(x^2))\ny.backward()\n"
    return step * 5


def norm_py(elements: int) -> str:
    step = (
        f"x = torch.randn({elements}, requires_grad=True)\n"
        "y = torch.sqrt(torch.sum(x**2))\ny.backward()\n"
    )
    return "torch.set_num_threads(1)\n" + step * 5


#: Runs a .py body on PyTorch, compiled and run in one process, and prints the
#: wall and CPU seconds that took: PyTorch's start-up (seconds, and noisy) is
#: left out by measuring inside, not by subtracting `python -c "import torch"`.
TORCH_RUNNER = textwrap.dedent(
    """
    import sys, time
    import torch
    body = open(sys.argv[1], encoding="utf-8").read()
    wall, cpu = time.perf_counter(), time.process_time()
    exec(compile(body, sys.argv[1], "exec"), {"torch": torch})
    print(time.perf_counter() - wall, time.process_time() - cpu)
    """
)


PARSE_TIMER = textwrap.dedent(
    """
    import sys, time, gc
    sys.path.insert(0, sys.argv[1])
    from adcli.lang import parser
    source = open(sys.argv[2], encoding="utf-8").read()
    parser.parse("1")
    tokens = len(parser._tokenize(source, "f", 200, parser._get_tables()))
    best = min(
        (lambda t0: (parser.parse(source, "f"), time.perf_counter() - t0)[1])(time.perf_counter())
        for _ in range(int(sys.argv[3]))
    )
    import tracemalloc
    tracemalloc.start()
    parser.parse(source, "f")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(best * 1e6 / tokens, tokens, peak / len(source.encode("utf-8", "surrogatepass")))
    """
)


def _parse_cost(root: Path, script: Path, repeats: int, env: dict) -> tuple[float, int, float]:
    """Microseconds per token (best of ``repeats``), tokens, and the peak memory of
    one parse (tracemalloc) per byte of source."""
    env = {**env, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_TIMER, str(root), str(script), str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), float(out[2])


def timed_rounds(
    commands: dict[str, list[str]], repeats: int, env: dict, warmup: int = 1
) -> tuple[dict[str, float], dict[str, float], dict[str, str], dict[str, dict]]:
    """Median wall and CPU (user + system of the child) seconds of each command,
    one warm-up round then ``repeats`` rounds, each round running every command
    once (``warmup`` rounds first, not counted), the failures, and every round's
    samples by clock ("wall", "cpu"). CPU time is what a shared, loaded machine
    distorts least."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    failed: dict[str, str] = {}
    for round_ in range(warmup + repeats):
        for name, argv in commands.items():
            if name in failed:
                continue
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0:
                failed[name] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-300:]}"
                continue
            if round_ >= warmup:
                if name.startswith("torch"):  # it timed itself, start-up left out
                    inner_wall, inner_cpu = map(float, proc.stdout.split()[-2:])
                    walls[name].append(inner_wall)
                    cpus[name].append(inner_cpu)
                    continue
                walls[name].append(wall)
                cpus[name].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
    wall_med = {k: statistics.median(v) for k, v in walls.items() if v}
    cpu_med = {k: statistics.median(v) for k, v in cpus.items() if v}
    return wall_med, cpu_med, failed, {"wall": walls, "cpu": cpus}


def per_round(samples: dict[str, list[float]]) -> dict[str, float]:
    """The same figures as :func:`figures`, but worked out within each round (its run
    less its own one-line run, over its own torch run) and then the median over the
    rounds: a slow moment of the machine, which every command of a round shares,
    cancels out instead of landing on one median and not on another."""
    n = min(map(len, samples.values()))
    take = {name: values[:n] for name, values in samples.items()}
    one = take["adcli run one line"]
    out = {
        "startup_above_floor_s": statistics.median(
            map(lambda e, f: e - f, take["adcli eval 1+1"], take["import floor"])
        )
    }
    if "torch chain.py" in take:
        for key, run in (("ratio_cold", "adcli cold run"), ("ratio_warm", "adcli warm run")):
            out[key] = statistics.median(
                (r - o) / t for r, o, t in zip(take[run], one, take["torch chain.py"])
            )
        out["ratio_norm"] = statistics.median(
            (r - o) / t for r, o, t in zip(take["adcli norm run"], one, take["torch norm.py"])
        )
    return out


def figures(med: dict[str, float], ops: int, torch: bool) -> dict[str, float]:
    out = {
        "cold_us_per_op": (med["adcli cold run"] - med["adcli run one line"]) / ops * 1e6,
        "warm_us_per_op": (med["adcli warm run"] - med["adcli run one line"]) / ops * 1e6,
        "startup_s": med["adcli eval 1+1"],
        "import_floor_s": med["import floor"],
        "startup_above_floor_s": med["adcli eval 1+1"] - med["import floor"],
        "norm_net_s": med["adcli norm run"] - med["adcli run one line"],
    }
    if torch:
        out["torch_us_per_op"] = med["torch chain.py"] / ops * 1e6
        out["torch_norm_net_s"] = med["torch norm.py"]
        out["ratio_cold"] = out["cold_us_per_op"] / out["torch_us_per_op"]
        out["ratio_warm"] = out["warm_us_per_op"] / out["torch_us_per_op"]
        out["ratio_norm"] = out["norm_net_s"] / out["torch_norm_net_s"]
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torch-python", default=None, help="a Python with torch installed")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    p.add_argument("--statements", type=int, default=20_000)
    p.add_argument("--norm-elements", type=int, default=10**7)
    p.add_argument("--baseline", type=Path, default=None, help="an older checkout to compare")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)

    torch_py = args.torch_python
    if torch_py is None:
        probe = subprocess.run(
            [sys.executable, "-c", "import torch"], capture_output=True, check=False
        )
        torch_py = sys.executable if probe.returncode == 0 else None
    n = args.statements
    adcli = [sys.executable, "-m", "adcli"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = python_env()
        env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a private cache, primed below
        files = {
            "chain.ad": chain_ad(n),
            "chain.py": chain_py(n),
            "one.ad": "y = 1\n",
            "norm.ad": norm_ad(args.norm_elements),
            "norm.py": norm_py(args.norm_elements),
        }
        for name, text in files.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
        f = {name: str(tmp_path / name) for name in files}
        commands = {
            "adcli cold run": [*adcli, "--no-cache", "run", f["chain.ad"], "--quiet"],
            "adcli warm run": [*adcli, "run", f["chain.ad"], "--quiet"],
            "adcli run one line": [*adcli, "--no-cache", "run", f["one.ad"], "--quiet"],
            "adcli eval 1+1": [*adcli, "eval", "1+1"],
            "import floor": [sys.executable, "-c", "import numpy, rich, typer, lark"],
            "adcli norm run": [*adcli, "--no-cache", "run", f["norm.ad"], "--quiet"],
        }
        if torch_py:
            commands["torch chain.py"] = [torch_py, "-c", TORCH_RUNNER, f["chain.py"]]
            commands["torch norm.py"] = [torch_py, "-c", TORCH_RUNNER, f["norm.py"]]
        subprocess.run(commands["adcli warm run"], env=env, check=True, capture_output=True)
        wall_med, cpu_med, failed, rounds = timed_rounds(commands, args.repeats, env, args.warmup)
        parse_now = _parse_cost(REPO, tmp_path / "chain.ad", args.repeats, env)
        parse_before = None
        if args.baseline is not None:
            parse_before = _parse_cost(args.baseline, tmp_path / "chain.ad", args.repeats, env)

    if failed:
        for name, why in failed.items():
            print(f"{name}: {why}", file=sys.stderr)
        return 1
    torch = bool(torch_py)
    result: dict = {
        "statements": n,
        "repeats": args.repeats,
        "wall_medians_s": wall_med,
        "cpu_medians_s": cpu_med,
        "wall": figures(wall_med, n, torch),
        "cpu": figures(cpu_med, n, torch),
        "wall_per_round": per_round(rounds["wall"]),
        "cpu_per_round": per_round(rounds["cpu"]),
        "rounds_s": rounds,
        "parse_us_per_token": parse_now[0],
        "tokens": parse_now[1],
        "parse_bytes_per_source_byte": parse_now[2],
    }
    if parse_before is not None:
        result["parse_us_per_token_baseline"] = parse_before[0]
        result["parse_bytes_per_source_byte_baseline"] = parse_before[2]
    lines = [f"statements: {n}, repeats: {args.repeats} (medians of interleaved rounds)"]
    for clock in ("wall", "cpu"):
        r = result[clock]
        lines.append(
            f"[{clock}] cold {r['cold_us_per_op']:.2f} us/op, warm {r['warm_us_per_op']:.2f} us/op"
            f" (net of start-up); start-up {r['startup_s']:.3f} s, import floor "
            f"{r['import_floor_s']:.3f} s ({r['startup_above_floor_s']:+.3f} s); "
            f"norm {r['norm_net_s']:.3f} s net"
        )
        if torch:
            lines.append(
                f"[{clock}] torch {r['torch_us_per_op']:.2f} us/op, norm {r['torch_norm_net_s']:.3f}"
                f" s net; ratios cold {r['ratio_cold']:.2f} (<= 1.0), warm {r['ratio_warm']:.2f}"
                f" (<= 0.5), norm {r['ratio_norm']:.2f} (<= 1.2)"
            )
    for clock in ("wall", "cpu"):
        r = result[f"{clock}_per_round"]
        ratios = (
            f"ratios cold {r['ratio_cold']:.2f}, warm {r['ratio_warm']:.2f}, norm "
            f"{r['ratio_norm']:.2f}; "
            if torch
            else ""
        )
        lines.append(
            f"[{clock}, within each round, median over rounds] {ratios}start-up "
            f"{r['startup_above_floor_s']:+.3f} s above the floor"
        )
    lines.append(
        f"parse (in process, best of {args.repeats}): {parse_now[0]:.2f} us/token"
        f" ({parse_now[1]} tokens); peak memory {parse_now[2]:.1f} bytes per source byte"
    )
    if parse_before is not None:
        lines.append(
            f"parse baseline {args.baseline}: {parse_before[0]:.2f} us/token;"
            f" peak memory {parse_before[2]:.1f} bytes per source byte"
        )
    if not torch:
        lines.append("torch not available: no ratios (--torch-python PY)")
    print("\n".join(lines))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main(sys.argv[1:]))
