"""Health verdicts: ok | warn | fail per GPU and for the host, each with reasons and a line saying what to do.

The rules (all thresholds in `HealthSettings`):
- fail: NVML cannot start (library not found, driver not loaded, version mismatch, ...), no GPU found, a GPU
  lost / needing a reset / answering "unknown error", remapped rows or retired pages pending (reset needed),
  a row-remap failure, a fatal Xid (DCGM's list) or a fallen-off-the-bus message in the recent window;
- warn: any other Xid in the window, temperature within `temp_margin_c` of the slowdown threshold, thermal
  or power throttling, uncorrected ECC errors since driver load, a PCIe link below its maximum width.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cep_core.checks import Status, worst
from cep_core.gpu.kernel_log import KIND_XID, XidEvent, normalize_pci, since
from cep_core.gpu.nvml import NA
from cep_core.gpu.sample import POWER_THROTTLE, THERMAL_THROTTLE, GpuSample, HostSample
from cep_core.gpu.xid_catalog import ACTION_TEXT, Action, Severity, lookup

TEMP_MARGIN_C = 5.0  # warn when temperature >= slowdown threshold - margin
TEMP_FALLBACK_C = 85.0  # warn above this when the slowdown threshold is n/a


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Thresholds of the health rules; every CLI command can override them."""

    xid_window_s: float = 24 * 3600.0  # Xids older than this no longer count
    temp_margin_c: float = TEMP_MARGIN_C
    temp_fallback_c: float = TEMP_FALLBACK_C
    warn_on_power_throttle: bool = True
    warn_on_thermal_throttle: bool = True
    warn_on_ecc_uncorrected: bool = True
    warn_on_pcie_degraded: bool = True

    def temp_scale_c(self, slowdown: float | None) -> float:
        """The temperature a gauge reads as full: the slowdown threshold, or, for a GPU that reports none, the
        one the fallback warning implies (fallback + margin), so the console's bar and the verdict agree."""
        return slowdown if slowdown else self.temp_fallback_c + self.temp_margin_c


@dataclass(frozen=True, slots=True)
class Finding:
    status: Status
    reason: str
    remedy: str

    def to_dict(self) -> dict[str, str]:
        return {"status": str(self.status), "reason": self.reason, "remedy": self.remedy}


@dataclass(slots=True)
class GpuHealth:
    index: int
    name: Any
    pci: str | None
    status: Status = Status.OK
    findings: list[Finding] = field(default_factory=list)

    @property
    def remediation(self) -> str:
        return _remediation(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "pci": self.pci,
            "status": str(self.status),
            "findings": [f.to_dict() for f in self.findings],
            "remediation": self.remediation,
        }


@dataclass(slots=True)
class HealthReport:
    status: Status
    gpus: list[GpuHealth]
    host_findings: list[Finding]
    sample: HostSample
    events: list[XidEvent]

    @property
    def reasons(self) -> list[str]:
        out = [f.reason for f in self.host_findings if f.status != Status.OK]
        for g in self.gpus:
            out += [f"GPU {g.index}: {f.reason}" for f in g.findings if f.status != Status.OK]
        return out

    @property
    def remediation(self) -> str:
        return _remediation(self.host_findings + [f for g in self.gpus for f in g.findings])

    @property
    def exit_code(self) -> int:
        return {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}[self.status]

    def gpu(self, index: int) -> GpuHealth | None:
        return next((g for g in self.gpus if g.index == index), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "reasons": self.reasons,
            "remediation": self.remediation,
            "host_findings": [f.to_dict() for f in self.host_findings],
            "gpus": [g.to_dict() for g in self.gpus],
            "sample": self.sample.to_dict(),
            "events": [e.to_dict() for e in self.events],
        }


def _remediation(findings: list[Finding]) -> str:
    bad = [f for f in findings if f.status != Status.OK]
    if not bad:
        return "Nothing to do."
    top = worst([f.status for f in bad])
    seen: list[str] = []
    for f in bad:
        if f.status == top and f.remedy not in seen:
            seen.append(f.remedy)
    return " ".join(seen)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _gpu_findings(g: GpuSample, s: HealthSettings) -> list[Finding]:
    out: list[Finding] = []
    if g.error == "gpu_lost":
        out.append(
            Finding(
                Status.FAIL,
                "GPU is lost (fell off the bus / stopped answering)",
                ACTION_TEXT[Action.CHECK_POWER_PCIE],
            )
        )
        return out
    if g.error == "reset_required":
        out.append(
            Finding(
                Status.FAIL,
                "GPU needs a reset before it can be used",
                f"Stop its processes and run `nvidia-smi -r -i {g.index}`, or reboot the host.",
            )
        )
        return out
    if g.error:
        out.append(
            Finding(
                Status.FAIL,
                f"GPU answers NVML with an unknown error ({g.error_detail or g.error})",
                "Read `dmesg | grep -i nvrm` for an Xid; reset the GPU or reboot the host.",
            )
        )
        return out
    if g.remap_pending is True:
        out.append(
            Finding(
                Status.FAIL,
                "remapped rows pending: the GPU needs a reset to remap memory rows",
                f"Stop its processes and reset it (`nvidia-smi -r -i {g.index}`) or reboot.",
            )
        )
    if g.remap_failure is True:
        out.append(Finding(Status.FAIL, "row remapping failed", ACTION_TEXT[Action.CONTACT_SUPPORT]))
    if g.retired_pending is True:
        out.append(
            Finding(
                Status.FAIL,
                "retired pages pending: the GPU needs a reset to retire memory pages",
                f"Stop its processes and reset it (`nvidia-smi -r -i {g.index}`) or reboot.",
            )
        )
    temp, slow = _num(g.temperature), _num(g.temp_slowdown)
    if temp is not None:
        limit = slow - s.temp_margin_c if slow is not None else s.temp_fallback_c
        if temp >= limit:
            where = f"slowdown at {slow:.0f} C" if slow is not None else f"warning level {limit:.0f} C"
            out.append(
                Finding(
                    Status.WARN,
                    f"temperature {temp:.0f} C is near its {where}",
                    "Check airflow, fans and the room temperature; lower the power limit "
                    "(`nvidia-smi -pl`) if it keeps climbing.",
                )
            )
    reasons = g.throttle_reasons if isinstance(g.throttle_reasons, list) else []
    thermal = sorted(THERMAL_THROTTLE.intersection(reasons))
    power = sorted(POWER_THROTTLE.intersection(reasons))
    if thermal and s.warn_on_thermal_throttle:
        out.append(
            Finding(
                Status.WARN,
                f"clocks thermally throttled ({', '.join(thermal)})",
                "Check cooling (airflow, fans, blocked intakes); throughput is reduced.",
            )
        )
    if power and s.warn_on_power_throttle:
        out.append(
            Finding(
                Status.WARN,
                f"clocks held by power ({', '.join(power)}), drawing {g.power_w} W of {g.power_limit_w} W",
                "Expected under a heavy load; if unexpected, check the power limit "
                "(`nvidia-smi -q -d POWER`) and the PSU.",
            )
        )
    ecc = _num(g.ecc_uncorrected)
    if ecc and s.warn_on_ecc_uncorrected:
        out.append(
            Finding(
                Status.WARN,
                f"{ecc:.0f} uncorrected ECC error(s) since the driver loaded",
                "Watch for Xid 48/63/94/95; reset the GPU when idle so rows get remapped.",
            )
        )
    width, max_width = _num(g.pcie_width), _num(g.pcie_max_width)
    if s.warn_on_pcie_degraded and width and max_width and width < max_width and g.util_gpu not in (0, NA):
        out.append(
            Finding(
                Status.WARN,
                f"PCIe link running at x{width:.0f} of x{max_width:.0f}",
                "Reseat the GPU or its riser; check the slot and BIOS PCIe settings.",
            )
        )
    return out


def _xid_finding(ev: XidEvent) -> Finding:
    info = lookup(ev.xid)
    what = f"Xid {ev.xid}" if ev.xid is not None else "GPU fell off the bus"
    who = f" (pid {ev.pid}{', ' + ev.process if ev.process else ''})" if ev.pid else ""
    status = Status.FAIL if info.severity == Severity.FATAL else Status.WARN
    return Finding(status, f"{what}: {info.name}{who}", info.action_text)


def evaluate(
    sample: HostSample,
    events: Iterable[XidEvent] = (),
    settings: HealthSettings | None = None,
    now: float | None = None,
    boot_time: float | None = None,
) -> HealthReport:
    """Judge one sample plus the Xid events seen (older than the window are ignored)."""
    settings = settings or HealthSettings()
    now = time.time() if now is None else now
    recent = since(list(events), now - settings.xid_window_s, boot_time=boot_time)
    host: list[Finding] = []
    if sample.init_error is not None:
        host.append(Finding(Status.FAIL, sample.init_error.message, sample.init_error.fix))
    elif not sample.gpus:
        host.append(
            Finding(
                Status.FAIL,
                "NVML started but found no GPU",
                "Check `nvidia-smi -L` and `lspci | grep -i nvidia`; a GPU may have fallen off "
                "the bus (see `dmesg | grep -i nvrm`) — reboot and check its seating and power.",
            )
        )
    gpus: list[GpuHealth] = []
    by_pci: dict[str, GpuHealth] = {}
    for g in sample.gpus:
        gh = GpuHealth(index=g.index, name=g.name, pci=g.pci_key, findings=_gpu_findings(g, settings))
        gpus.append(gh)
        if gh.pci:
            by_pci[gh.pci] = gh
    for ev in _dedupe(recent):
        finding = _xid_finding(ev)
        target = by_pci.get(normalize_pci(ev.pci) or "")
        if target is not None:
            target.findings.append(finding)
        else:
            where = f" on PCI {ev.pci}" if ev.pci else ""
            host.append(Finding(finding.status, finding.reason + where, finding.remedy))
    for gh in gpus:
        gh.status = worst([f.status for f in gh.findings])
    status = worst([f.status for f in host] + [g.status for g in gpus])
    return HealthReport(status=status, gpus=gpus, host_findings=host, sample=sample, events=recent)


def _dedupe(events: list[XidEvent]) -> list[XidEvent]:
    """One finding per (xid, pci): a burst of 200 Xid 13 lines is one reason, not 200."""
    seen: dict[tuple[Any, Any], XidEvent] = {}
    for ev in events:
        xid = ev.xid if ev.kind == KIND_XID else 79  # the no-number fallen-off-the-bus message is Xid 79
        seen.setdefault((xid, normalize_pci(ev.pci)), ev)
    return list(seen.values())


def host_health(
    source: Any = None,
    settings: HealthSettings | None = None,
    events: Iterable[XidEvent] | None = None,
    home: str | None = None,
    read_kernel_log: bool = True,
) -> HealthReport:
    """Sample once and judge: the simple API for the console, the pre-flight and job control.

    Xid events come from `events` when given; otherwise from cep.db (what the watcher recorded) plus a
    one-shot read of the readable kernel-log sources (or, for a replay source, its recorded kernel log).
    """
    from cep_core.gpu.sample import sample_once

    sample = sample_once(source)
    if events is None:
        from cep_core.gpu.watch import gather_events

        events = gather_events(
            source=source,
            home=home,
            read_kernel_log=read_kernel_log,
            window_s=(settings or HealthSettings()).xid_window_s,
        )
    return evaluate(sample, events, settings)
