"""How long ``adcli plot`` takes to sample f and its derivatives (one batched Taylor pass).

    python scripts/bench/plot_points.py [--points 200] [--order 4] [--repeat 20]

Prints the median seconds of ``Session.plot`` (sampling only, no drawing) for a few
expressions; the issue's target is 200 points to order 4 well under a second.
"""

from __future__ import annotations

import argparse
import statistics
import time

from adcli.lang.interpreter import Session

EXPRESSIONS = ["sin(x)*exp(-x^2/4)", "tanh(3*x) + sqrt(x^2 + 1)", "log(1 + x^2)/(1 + exp(-x))"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--order", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    session = Session(dtype="float64")
    for expr in EXPRESSIONS:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            session.plot(expr, "x", -3, 3, points=args.points, order=args.order)
            times.append(time.perf_counter() - started)
        print(
            f"{expr:<32} {args.points} points, order {args.order}: "
            f"median {statistics.median(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
