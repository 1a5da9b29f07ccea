"""Pairing predicted with expected tool calls: our `_assign` (exact DP over used columns up to 10 expected calls,
greedy beyond) against scipy's `linear_sum_assignment` (exact, Hungarian-style), on the same random weight
matrices in the same process. The ratio is scipy's time over ours (> 1: ours is faster).

Weights look like the scorer's: -1 where the names differ (never paired), else a positive score. scipy gets
what it would get in the scorer: the list of lists turned into an array (negatives as 0), its pairs filtered.
Also timed: the import each costs, in fresh processes (`cep` imports the scorer; scipy would come with it).

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

import numpy as np
from scipy.optimize import linear_sum_assignment

from cep_core.scoring.toolcall import _assign

SIZES = [(1, 1), (1, 3), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (8, 8), (10, 10), (16, 16), (32, 32)]
Pairs = list[tuple[int, int]]


def scipy_assign(weights: list[list[int]]) -> Pairs:
    """The same contract as _assign with scipy: negative weights never pair."""
    array = np.maximum(np.asarray(weights), 0)
    rows, cols = linear_sum_assignment(array, maximize=True)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if weights[i][j] >= 0]


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
    print(f"{'size':>7} {'ours µs':>9} {'scipy µs':>9} {'scipy/ours':>10}  ours exact, same total")
    for n, m in SIZES:
        work = matrices(n, m, args.matrices, rng)
        ours = timed(_assign, work, args.repeat)
        theirs = timed(scipy_assign, work, args.repeat)
        same = sum(
            sum(w[i][j] for i, j in _assign(w)) == sum(w[i][j] for i, j in scipy_assign(w)) for w in work
        )
        exact = "yes" if m <= 10 else "greedy"
        print(f"{n:>3}x{m:<3} {ours:9.1f} {theirs:9.1f} {theirs / ours:10.2f}  {exact}, {same}/{len(work)}")
    base = import_ms("pass")
    scorer = import_ms("import cep_core.scoring")
    scipy = import_ms("import cep_core.scoring, scipy.optimize")
    print(f"import, fresh process (median of 5): python {base:.0f} ms, cep_core.scoring {scorer:.0f} ms,")
    print(
        f"  with scipy.optimize {scipy:.0f} ms: +{scipy - scorer:.0f} ms ({scipy / scorer:.2f}x the scorer's)"
    )


if __name__ == "__main__":
    main()
