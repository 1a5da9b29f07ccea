"""The Xid catalog: what each common NVIDIA Xid means, how bad it is, and what to do about it.

One table, imported by the parser, the health rules, the CLI and the console (DESIGN.md: one place for
each fact). Meanings and actions follow NVIDIA's public Xid catalog ("Analyzing Xid Errors with the Xid
Catalog", docs.nvidia.com/deploy/xid-errors) in our own words. `fatal` is DCGM's list of Xids that make a
GPU unusable until it is reset or the host rebooted; everything else is `warn` or `info`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    FATAL = "fatal"  # the GPU is unusable until reset / reboot: health fails
    WARN = "warn"  # an application or the GPU hit an error; health warns
    INFO = "info"  # a consequence or a notice; shown, health warns only inside the window


class Action(StrEnum):
    """NVIDIA's resolution buckets, in the order of escalation."""

    NONE = "none"
    RESTART_APP = "restart_app"
    RESET_GPU = "reset_gpu"
    REBOOT_HOST = "reboot_host"
    CHECK_POWER_PCIE = "check_power_pcie"
    CONTACT_SUPPORT = "contact_support"


ACTION_TEXT: dict[Action, str] = {
    Action.NONE: "No action needed; keep watching.",
    Action.RESTART_APP: "Restart the application (check its code and inputs if it repeats).",
    Action.RESET_GPU: "Stop the GPU's processes and reset it (`nvidia-smi -r -i <index>`), or reboot the host.",
    Action.REBOOT_HOST: "Reboot the host; if it repeats, drain the node and run `dcgmi diag -r 3`.",
    Action.CHECK_POWER_PCIE: "Reboot the host, then check the GPU's power cables, PSU headroom and PCIe "
    "seating/riser; if it repeats, contact your hardware vendor.",
    Action.CONTACT_SUPPORT: "Drain the node and contact your hardware vendor / NVIDIA support (likely RMA).",
}

# DCGM treats these as fatal: the GPU needs a reset or the host a reboot before it can be trusted.
FATAL_XIDS: frozenset[int] = frozenset({48, 74, 79, 95, 119, 120, 140})


@dataclass(frozen=True, slots=True)
class XidInfo:
    xid: int | None  # None for the "fallen off the bus" messages that carry no Xid number
    name: str
    meaning: str
    severity: Severity
    action: Action

    @property
    def action_text(self) -> str:
        return ACTION_TEXT[self.action]


def _x(xid: int, name: str, meaning: str, action: Action, severity: Severity | None = None) -> XidInfo:
    if severity is None:
        severity = Severity.FATAL if xid in FATAL_XIDS else Severity.WARN
    return XidInfo(xid, name, meaning, severity, action)


_A = Action
_CATALOG: dict[int, XidInfo] = {
    info.xid: info
    for info in [
        _x(
            8,
            "GPU stopped processing",
            "A channel stopped making progress (a hung kernel or a watchdog timeout).",
            _A.RESTART_APP,
        ),
        _x(
            13,
            "Graphics engine exception",
            "The GPU raised an exception while running work: usually an out-of-bounds access or illegal "
            "instruction in the application, rarely a hardware fault.",
            _A.RESTART_APP,
        ),
        _x(
            31,
            "GPU memory page fault",
            "The application touched GPU memory it does not own (illegal address); a driver or hardware "
            "fault is possible when it repeats across applications.",
            _A.RESTART_APP,
        ),
        _x(
            32,
            "Invalid or corrupted push buffer stream",
            "The command stream sent to the GPU was corrupted (driver, PCIe or system memory).",
            _A.RESTART_APP,
        ),
        _x(38, "Driver firmware error", "The driver's firmware reported an internal error.", _A.RESET_GPU),
        _x(
            43,
            "GPU stopped processing (channel reset)",
            "A channel hit an error and was reset; the process was stopped, the GPU itself is fine.",
            _A.RESTART_APP,
        ),
        _x(
            44,
            "Graphics engine fault during context switch",
            "The GPU faulted while switching contexts; work on it is unreliable.",
            _A.RESET_GPU,
        ),
        _x(
            45,
            "Preemptive cleanup after earlier errors",
            "The driver stopped the processes on a channel because of an earlier error (or the app was "
            "killed); look at the Xid before it.",
            _A.NONE,
            Severity.INFO,
        ),
        _x(
            48,
            "Double-bit ECC error",
            "An uncorrectable (double-bit) ECC error in GPU memory; the affected data is lost.",
            _A.RESET_GPU,
        ),
        _x(56, "Display engine error", "The display engine reported an error.", _A.RESTART_APP),
        _x(
            57,
            "Error programming video memory interface",
            "The video memory interface could not be set up.",
            _A.REBOOT_HOST,
        ),
        _x(
            61,
            "Internal micro-controller breakpoint/warning",
            "A GPU micro-controller (PMU) hit an internal breakpoint.",
            _A.RESET_GPU,
        ),
        _x(62, "Internal micro-controller halt", "A GPU micro-controller halted.", _A.RESET_GPU),
        _x(
            63,
            "ECC page retirement / row remapping event",
            "A memory page was retired or a row marked for remapping; it takes effect at the next GPU reset.",
            _A.RESET_GPU,
        ),
        _x(
            64,
            "ECC page retirement / row remapper failure",
            "Retiring a page or remapping a row failed; the memory error could not be contained.",
            _A.CONTACT_SUPPORT,
        ),
        _x(68, "Video processor exception", "The NVDEC/video engine raised an exception.", _A.RESTART_APP),
        _x(
            69,
            "Graphics engine class error",
            "The graphics engine received an illegal class/method.",
            _A.RESTART_APP,
        ),
        _x(
            74,
            "NVLink error",
            "An NVLink reported a fatal error; peer-to-peer traffic is broken.",
            _A.RESET_GPU,
        ),
        _x(
            79,
            "GPU has fallen off the bus",
            "The GPU stopped answering on PCIe: the driver lost it. Usually power, heat or PCIe seating.",
            _A.CHECK_POWER_PCIE,
        ),
        _x(
            92,
            "High single-bit ECC error rate",
            "Corrected ECC errors are arriving at a high rate.",
            _A.RESET_GPU,
        ),
        _x(
            94,
            "Contained ECC error",
            "An uncorrectable ECC error was contained to the application that used the memory; other work "
            "continues. Reset the GPU when it is idle to remap the row.",
            _A.RESTART_APP,
        ),
        _x(
            95,
            "Uncontained ECC error",
            "An uncorrectable ECC error could not be contained; every application on the GPU is affected.",
            _A.RESET_GPU,
        ),
        _x(
            109,
            "Context switch timeout",
            "A context switch did not finish in time (often an app hang).",
            _A.RESTART_APP,
        ),
        _x(110, "Security fault", "The GPU reported a security fault.", _A.RESET_GPU),
        _x(
            119,
            "GSP RPC timeout",
            "The GPU System Processor (GSP) firmware stopped answering the driver.",
            _A.RESET_GPU,
        ),
        _x(120, "GSP error", "The GPU System Processor firmware reported an error.", _A.RESET_GPU),
        _x(
            121,
            "C2C link corrected error",
            "The chip-to-chip link corrected an error.",
            _A.NONE,
            Severity.INFO,
        ),
        _x(
            122,
            "SPI PMU RPC read failure",
            "Reading from the GPU's SPI flash through the PMU failed.",
            _A.RESET_GPU,
        ),
        _x(
            123,
            "SPI PMU RPC write failure",
            "Writing to the GPU's SPI flash through the PMU failed.",
            _A.RESET_GPU,
        ),
        _x(137, "NVLink FLA privilege error", "An NVLink fabric access was refused.", _A.RESTART_APP),
        _x(
            140,
            "Unrecovered ECC error",
            "An ECC error the driver could not recover from, found outside a running application.",
            _A.RESET_GPU,
        ),
        _x(143, "GPU initialization failure", "The GPU failed to initialise.", _A.REBOOT_HOST),
        _x(144, "NVLink SAW error", "An NVLink (SAW) error.", _A.RESET_GPU),
        _x(145, "NVLink RLW error", "An NVLink (RLW) error.", _A.RESET_GPU),
        _x(149, "NVLink NETIR error", "An NVLink (NETIR) error.", _A.RESET_GPU),
        _x(
            154,
            "GPU recovery action changed",
            "The driver says what recovery the GPU now needs (reset or reboot); see the Xid before it.",
            _A.RESET_GPU,
        ),
    ]
}

FALLEN_OFF_BUS = XidInfo(
    None,
    "GPU has fallen off the bus (no Xid number)",
    "The driver reports the GPU is not responding to commands (the message printed without an Xid "
    "number); same failure as Xid 79.",
    Severity.FATAL,
    Action.CHECK_POWER_PCIE,
)


def lookup(xid: int | None) -> XidInfo:
    """The catalog entry for `xid` (None = the fallen-off-the-bus message); unknown Xids get a generic entry."""
    if xid is None:
        return FALLEN_OFF_BUS
    info = _CATALOG.get(xid)
    if info is not None:
        return info
    severity = Severity.FATAL if xid in FATAL_XIDS else Severity.WARN
    return XidInfo(
        xid,
        f"Xid {xid}",
        "Not in CEP's catalog; see NVIDIA's Xid catalog for this number.",
        severity,
        Action.RESTART_APP,
    )


def severity_of(xid: int | None) -> Severity:
    return lookup(xid).severity


def known_xids() -> list[int]:
    return sorted(_CATALOG)
