"""CPU cost of one sample of 8 GPUs (goal: under 20 ms), against a reference measured in the same run.

Reference: one bare `psutil.process_iter(["pid", "username", "cmdline"])` pass over this machine's
processes (the cost of what `top` does once). Measured: a warm `Sampler.sample()` through the replay source
(the sampler's own Python cost: every field through `nvml.query`, process descriptions), and, when a driver
is present, through NVML itself (real driver calls). CPU time (process_time), not wall time.

Run: .venv/bin/python benchmarks/gpu_sample.py [--n 200]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import psutil

from cep_core.gpu.nvml import NvmlSource
from cep_core.gpu.replay import ReplaySource, bundled_recording
from cep_core.gpu.sample import Sampler

GOAL_MS = 20.0


def cpu_ms_per_call(fn, n: int) -> float:
    fn()  # warm up (static fields cached, imports done)
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1000


def reference() -> None:
    for _ in psutil.process_iter(["pid", "username", "cmdline"]):
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--recording", default=str(bundled_recording("healthy-8x-h100")))
    args = ap.parse_args()

    print(f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, python {platform.python_version()}")
    ref = cpu_ms_per_call(reference, args.n)
    print(f"reference  psutil.process_iter over {len(psutil.pids())} processes: {ref:7.3f} ms CPU")

    replay = Sampler(ReplaySource(Path(args.recording), loop=True))
    gpus = len(replay.sample().gpus)
    rep = cpu_ms_per_call(replay.sample, args.n)
    replay.close()
    print(
        f"replay     Sampler.sample() of {gpus} GPUs:              {rep:7.3f} ms CPU  "
        f"(ratio to reference {rep / ref:5.2f}x; goal < {GOAL_MS:.0f} ms: {'met' if rep < GOAL_MS else 'MISSED'})"
    )

    nvml = Sampler(NvmlSource())
    first = nvml.sample()
    if first.init_error is not None:
        print(f"nvml       not measured: {first.init_error.message}")
    else:
        nv = cpu_ms_per_call(nvml.sample, args.n)
        per8 = nv / max(len(first.gpus), 1) * 8
        print(
            f"nvml       Sampler.sample() of {len(first.gpus)} GPUs:              {nv:7.3f} ms CPU  "
            f"(~{per8:.2f} ms per 8 GPUs; ratio to reference {nv / ref:5.2f}x, to replay {nv / rep:5.2f}x; "
            f"goal < {GOAL_MS:.0f} ms per 8: {'met' if per8 < GOAL_MS else 'MISSED'})"
        )
    nvml.close()


if __name__ == "__main__":
    main()
