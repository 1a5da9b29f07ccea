"""Pairing predicted with expected tool calls: the DP in `_assign` against scipy's `linear_sum_assignment`
(the Hungarian method, `_assign_scipy`), on the same random weight matrices in the same process. The ratio is
scipy's time over the DP's (> 1: the DP is faster). The scorer takes the DP up to 6 calls a side and scipy
beyond; this is the measurement behind that threshold (both are exact: the totals must agree).

Weights look like the scorer's: -1 where the names differ (never paired), else a positive score. Also timed:
the import scipy costs the scorer, in fresh processes (it is imported only when a table is past the DP's size).

    python benchmarks/assignment.py [--matrices 300] [--repeat 5]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from cep_core.scoring import toolcall
from cep_core.scoring.toolcall import _assign, _assign_scipy

SIZES = [(1, 1), (1, 3), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (8, 8), (10, 10), (12, 12)]
Pairs = list[tuple[int, int]]


def matrices(n: int, m: int, count: int, rng: random.Random) -> list[list[list[int]]]:
    return [
        [[rng.randint(1, 40) if rng.random() < 0.6 else -1 for _ in range(m)] for _ in range(n)]
        for _ in range(count)
    ]


def timed(fn: Callable[[list[list[int]]], Pairs], work: list[list[list[int]]], repeat: int) -> float:
    """Best of `repeat` runs over all matrices, in microseconds per matrix."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for weights in work:
            fn(weights)
        best = min(best, time.perf_counter() - start)
    return best / len(work) * 1e6


def import_ms(code: str, n: int = 5) -> float:
    """Median wall time of a fresh interpreter running `code`, in ms."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrices", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(15)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'size':>7} {'DP µs':>9} {'scipy µs':>9} {'scipy/DP':>10}  same total")
    toolcall._MAX_DP_ASSIGNMENT = max(n for n, _m in SIZES)  # time the DP itself at every size
    for n, m in SIZES:
        work = matrices(n, m, args.matrices, rng)
        ours = timed(_assign, work, args.repeat)
        theirs = timed(_assign_scipy, work, args.repeat)
        same = sum(
            sum(w[i][j] for i, j in _assign(w)) == sum(w[i][j] for i, j in _assign_scipy(w)) for w in work
        )
        print(f"{n:>3}x{m:<3} {ours:9.1f} {theirs:9.1f} {theirs / ours:10.2f}  {same}/{len(work)}")
    base = import_ms("pass")
    scorer = import_ms("import cep_core.scoring")
    scipy = import_ms("import cep_core.scoring, scipy.optimize")
    print(f"import, fresh process (median of 5): python {base:.0f} ms, cep_core.scoring {scorer:.0f} ms,")
    print(
        f"  with scipy.optimize {scipy:.0f} ms: +{scipy - scorer:.0f} ms ({scipy / scorer:.2f}x the scorer's)"
    )


if __name__ == "__main__":
    main()
