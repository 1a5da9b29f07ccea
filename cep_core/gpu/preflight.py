"""The GPU part of a launch's pre-flight: health plus free memory against what the job needs.

`check_gpu()` returns `cep_core.checks.Check`s, the shape every pre-flight check has, so the training
pre-flight and job control can merge them with their own and take `worst()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cep_core.checks import Check, Status
from cep_core.gpu.health import HealthReport, HealthSettings, evaluate
from cep_core.gpu.kernel_log import XidEvent
from cep_core.gpu.nvml import NA

GIB = 1024**3


def _gib(n: Any) -> str:
    return f"{n / GIB:.1f} GiB" if isinstance(n, int | float) else str(n)


def checks_from_report(
    report: HealthReport, required_memory_bytes: int | None = None, gpu_indices: list[int] | None = None
) -> list[Check]:
    """Turn a health report into pre-flight checks for the GPUs a job will use."""
    sample = report.sample
    if sample.init_error is not None:
        err = sample.init_error
        return [Check("gpu.nvml", Status.FAIL, f"{err.message} Fix: {err.fix}")]
    checks = [
        Check("gpu.nvml", Status.OK, f"NVML up, driver {sample.driver_version}, {len(sample.gpus)} GPU(s)")
    ]
    host_bad = [f for f in report.host_findings if f.status != Status.OK]
    if host_bad:
        worst_status = Status.FAIL if any(f.status == Status.FAIL for f in host_bad) else Status.WARN
        checks.append(
            Check(
                "gpu.host",
                worst_status,
                "; ".join(f.reason for f in host_bad) + ". Fix: " + host_bad[0].remedy,
            )
        )
    present = {g.index for g in sample.gpus}
    wanted = list(gpu_indices) if gpu_indices is not None else sorted(present)
    missing = [i for i in wanted if i not in present]
    if missing:
        checks.append(
            Check(
                "gpu.devices",
                Status.FAIL,
                f"GPU(s) {missing} requested but this host has {sorted(present) or 'none'}. "
                "Fix: pick indices from `cep gpu status`, or check CUDA_VISIBLE_DEVICES.",
            )
        )
    if not wanted or not present:
        if not present:
            checks.append(Check("gpu.devices", Status.FAIL, "no GPU found. Fix: see `cep gpu status`."))
        return checks
    for index in wanted:
        gh, gs = report.gpu(index), sample.gpu(index)
        if gh is None or gs is None:
            continue
        bad = [f for f in gh.findings if f.status != Status.OK]
        detail = (
            ("; ".join(f.reason for f in bad) + ". Fix: " + gh.remediation) if bad else f"{gs.name}: healthy"
        )
        checks.append(Check(f"gpu.{index}.health", gh.status, detail))
        if required_memory_bytes is None or gs.error:
            continue
        free = gs.mem_free
        if free == NA:
            checks.append(
                Check(
                    f"gpu.{index}.memory",
                    Status.WARN,
                    f"free memory not reported (n/a); {_gib(required_memory_bytes)} needed",
                )
            )
        elif free >= required_memory_bytes:
            checks.append(
                Check(
                    f"gpu.{index}.memory",
                    Status.OK,
                    f"{_gib(free)} free of {_gib(gs.mem_total)}, {_gib(required_memory_bytes)} needed",
                )
            )
        else:
            users = (
                ", ".join(
                    f"pid {p.pid} ({p.user or '?'}: {(p.command or '?')[:60]}, {_gib(p.used_memory)})"
                    for p in gs.processes
                )
                or "no compute process listed"
            )
            checks.append(
                Check(
                    f"gpu.{index}.memory",
                    Status.FAIL,
                    f"{_gib(free)} free of {_gib(gs.mem_total)}, {_gib(required_memory_bytes)} "
                    f"needed; using it: {users}. Fix: stop those processes or pick another GPU.",
                )
            )
    return checks


def check_gpu(
    required_memory_bytes: int | None = None,
    gpu_indices: list[int] | None = None,
    source: Any = None,
    settings: HealthSettings | None = None,
    events: Iterable[XidEvent] | None = None,
    home: str | None = None,
) -> list[Check]:
    """Pre-flight GPU checks: NVML up, requested GPUs present and healthy, enough free memory on each.

    `source`: None for NVML, or a `ReplaySource`. `events`: Xid events to judge (default: cep.db plus the
    live kernel log, or the replay's recorded log). Never raises for GPU trouble: it is in the checks.
    """
    from cep_core.gpu.sample import sample_once

    sample = sample_once(source)
    if events is None:
        from cep_core.gpu.watch import gather_events

        events = gather_events(source=source, home=home, window_s=(settings or HealthSettings()).xid_window_s)
    report = evaluate(sample, events, settings)
    return checks_from_report(report, required_memory_bytes, gpu_indices)
