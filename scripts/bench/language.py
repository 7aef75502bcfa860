"""Speed through the language (issue 15): `adcli run` against a PyTorch .py file.

    python scripts/bench/language.py [--torch-python PY] [--repeats N] [--statements N]
                                     [--baseline DIR] [--json-out PATH]

Whole processes, interleaved (each round runs every command once), medians:

* cold: a 20,000-statement script of elementwise ops on a 1-element float64
  tensor, then backward, `adcli --no-cache run` (parsed every time), per op and
  net of start-up (`adcli run` of a one-line script), against the same ops in a
  .py file on PyTorch (net of `python -c "import torch"`);
* warm: the same script with the cache of parsed scripts primed;
* start-up: `adcli eval "1+1"` against the import floor `python -c "import
  numpy, rich, typer, lark"` measured in the same rounds;
* norm: 10^7-element randn, sqrt(sum(x^2)), backward, five times in one
  script, net of start-up, against the same in a .py file on PyTorch;
* parse: microseconds per token of the in-process parse of the cold script
  (best of several), and of --baseline DIR (an older checkout) for comparison.

PyTorch runs in the interpreter given by --torch-python (default: this one);
without it the ratios are left out and the absolute figures remain. Ratios
are adcli / torch: below 1 is better for adcli.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import REPO, Stats, python_env, wall_times  # noqa: E402

OPS = ["y = y * 1.0001", "y = sin(y)", "y = y + 0.0001", "y = y - 0.0001"]
TORCH_OPS = ["y = y * 1.0001", "y = torch.sin(y)", "y = y + 0.0001", "y = y - 0.0001"]


def chain_ad(n: int) -> str:
    head = 'x = tensor([1.5], dtype="float64", requires_grad=true)\ny = x\n'
    return head + "".join(OPS[i % 4] + "\n" for i in range(n)) + "y.backward()\n"


def chain_py(n: int) -> str:
    head = "import torch\nx = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)\ny = x\n"
    body = "".join(TORCH_OPS[i % 4] + "\n" for i in range(n))
    return head + body + "y.backward()\n"


NORM_AD = "".join(
    "x = randn(10000000, requires_grad=true)\ny = sqrt(sum(x^2))\ny.backward()\n" for _ in range(5)
)
NORM_PY = "import torch\ntorch.set_num_threads(1)\n" + "".join(
    "x = torch.randn(10000000, requires_grad=True)\ny = torch.sqrt(torch.sum(x**2))\n"
    "y.backward()\n"
    for _ in range(5)
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
    print(best * 1e6 / tokens, tokens)
    """
)


def _parse_cost(root: Path, script: Path, repeats: int, env: dict) -> tuple[float, int]:
    env = {**env, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_TIMER, str(root), str(script), str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torch-python", default=None, help="a Python with torch installed")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--statements", type=int, default=20_000)
    p.add_argument("--baseline", type=Path, default=None, help="an older checkout to compare")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)

    torch_py = args.torch_python
    if torch_py is None:
        probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
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
            "norm.ad": NORM_AD,
            "norm.py": NORM_PY,
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
            commands["torch chain.py"] = [torch_py, f["chain.py"]]
            commands["torch import"] = [torch_py, "-c", "import torch"]
            commands["torch norm.py"] = [torch_py, f["norm.py"]]
        subprocess.run(commands["adcli warm run"], env=env, check=True, capture_output=True)
        walls = wall_times(commands, args.repeats, warmup=1, env=env, cwd=REPO)
        parse_now = _parse_cost(REPO, tmp_path / "chain.ad", args.repeats, env)
        parse_before = None
        if args.baseline is not None:
            parse_before = _parse_cost(args.baseline, tmp_path / "chain.ad", args.repeats, env)

    failed = {k: v for k, v in walls.items() if not isinstance(v, Stats)}
    if failed:
        for name, why in failed.items():
            print(f"{name}: {why}", file=sys.stderr)
        return 1
    med = {k: v.median for k, v in walls.items()}
    ops = n
    result: dict = {"statements": n, "repeats": args.repeats, "medians_s": med}
    result["cold_us_per_op"] = (med["adcli cold run"] - med["adcli run one line"]) / ops * 1e6
    result["warm_us_per_op"] = (med["adcli warm run"] - med["adcli run one line"]) / ops * 1e6
    result["startup_s"] = med["adcli eval 1+1"]
    result["startup_above_floor_s"] = med["adcli eval 1+1"] - med["import floor"]
    result["norm_net_s"] = med["adcli norm run"] - med["adcli run one line"]
    result["parse_us_per_token"] = parse_now[0]
    result["tokens"] = parse_now[1]
    if parse_before is not None:
        result["parse_us_per_token_baseline"] = parse_before[0]
    if torch_py:
        torch_op = (med["torch chain.py"] - med["torch import"]) / ops * 1e6
        torch_norm = med["torch norm.py"] - med["torch import"]
        result["torch_us_per_op"] = torch_op
        result["torch_norm_net_s"] = torch_norm
        result["ratio_cold"] = result["cold_us_per_op"] / torch_op
        result["ratio_warm"] = result["warm_us_per_op"] / torch_op
        result["ratio_norm"] = result["norm_net_s"] / torch_norm
    lines = [
        f"statements: {n}, repeats: {args.repeats} (medians, interleaved)",
        f"cold   adcli {result['cold_us_per_op']:.2f} us/op (net of start-up)",
        f"warm   adcli {result['warm_us_per_op']:.2f} us/op",
        f"start  adcli eval 1+1 {med['adcli eval 1+1']:.3f} s; import floor "
        f"{med['import floor']:.3f} s; above floor {result['startup_above_floor_s']:+.3f} s",
        f"norm   adcli {result['norm_net_s']:.3f} s net (5 x fwd+bwd, 10^7)",
        f"parse  {parse_now[0]:.2f} us/token ({parse_now[1]} tokens)",
    ]
    if parse_before is not None:
        lines.append(f"parse  baseline {parse_before[0]:.2f} us/token")
    if torch_py:
        lines += [
            f"torch  {result['torch_us_per_op']:.2f} us/op; norm {torch_norm:.3f} s net",
            f"ratios cold {result['ratio_cold']:.2f} (<= 1.0), warm {result['ratio_warm']:.2f} "
            f"(<= 0.5), norm {result['ratio_norm']:.2f} (<= 1.2)",
        ]
    else:
        lines.append("torch  not available: no ratios (--torch-python PY)")
    print("\n".join(lines))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main(sys.argv[1:]))
