"""One sample of every GPU: the data shapes and the `Sampler` that fills them from a source.

A source exposes the NVML API (`source.api`: the `pynvml` module for the real thing, a recorded stand-in
for replay), `begin_sample()` and `describe_process(pid)`. The sampler calls the API only through
`nvml.query`, caches what never changes (name, UUID, bus id, slowdown threshold) and is cheap enough for a
console to call every second from a worker thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pynvml

from cep_core.gpu.kernel_log import normalize_pci
from cep_core.gpu.nvml import NA, DeviceFailure, NvmlInitError, NvmlSource, classify_init_error, query, text

Value = Any  # int | float | str ("n/a") | bool

THROTTLE_BITS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
    0x100: "display_clocks",
}
THERMAL_THROTTLE = frozenset({"hw_slowdown", "sw_thermal", "hw_thermal"})
POWER_THROTTLE = frozenset({"sw_power_cap", "hw_power_brake"})


def throttle_names(mask: Value) -> list[str] | str:
    if not isinstance(mask, int):
        return NA
    return [name for bit, name in THROTTLE_BITS.items() if mask & bit]


@dataclass(slots=True)
class ProcessInfo:
    pid: int
    used_memory: int | None  # bytes; None where NVML cannot attribute it (MIG, some drivers)
    user: str | None = None
    command: str | None = None


@dataclass(slots=True)
class GpuSample:
    index: int
    name: Value = NA
    uuid: Value = NA
    pci_bus_id: Value = NA
    util_gpu: Value = NA  # %
    util_mem: Value = NA  # %
    mem_used: Value = NA  # bytes
    mem_total: Value = NA  # bytes
    temperature: Value = NA  # °C
    temp_slowdown: Value = NA  # °C
    power_w: Value = NA
    power_limit_w: Value = NA
    fan: Value = NA  # %
    sm_clock: Value = NA  # MHz
    mem_clock: Value = NA  # MHz
    pstate: Value = NA  # 0 = P0
    throttle_mask: Value = NA
    throttle_reasons: Value = NA  # list of names
    ecc_uncorrected: Value = NA  # volatile count since driver load
    retired_pages: Value = NA
    retired_pending: Value = NA  # True = a reset is needed to retire pages
    remapped_corrected: Value = NA
    remapped_uncorrected: Value = NA
    remap_pending: Value = NA  # True = a reset is needed to remap rows
    remap_failure: Value = NA
    pcie_gen: Value = NA
    pcie_width: Value = NA
    pcie_max_gen: Value = NA
    pcie_max_width: Value = NA
    processes: list[ProcessInfo] = field(default_factory=list)
    error: str | None = None  # gpu_lost | reset_required | unknown_error
    error_detail: str = ""

    @property
    def pci_key(self) -> str | None:
        return normalize_pci(self.pci_bus_id) if isinstance(self.pci_bus_id, str) else None

    @property
    def mem_free(self) -> Value:
        if isinstance(self.mem_total, int) and isinstance(self.mem_used, int):
            return max(self.mem_total - self.mem_used, 0)
        return NA

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mem_free"] = self.mem_free
        return d


@dataclass(slots=True)
class HostSample:
    ts: float
    source: str
    gpus: list[GpuSample] = field(default_factory=list)
    driver_version: Value = NA
    nvml_version: Value = NA
    cuda_driver_version: Value = NA
    init_error: NvmlInitError | None = None

    def gpu(self, index: int) -> GpuSample | None:
        return next((g for g in self.gpus if g.index == index), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "source": self.source,
            "driver_version": self.driver_version,
            "nvml_version": self.nvml_version,
            "cuda_driver_version": self.cuda_driver_version,
            "init_error": self.init_error.to_dict() if self.init_error else None,
            "gpus": [g.to_dict() for g in self.gpus],
        }


@dataclass(slots=True)
class _Static:
    handle: Any
    name: Value
    uuid: Value
    pci_bus_id: Value
    temp_slowdown: Value
    pcie_max_gen: Value
    pcie_max_width: Value


class Sampler:
    """Samples all GPUs of one source. Thread-safe; `close()` shuts NVML down."""

    def __init__(self, source: Any = None):
        self.source = source if source is not None else NvmlSource()
        self._lock = threading.Lock()
        self._initialised = False
        self._system: dict[str, Value] = {}
        self._static: dict[int, _Static] = {}
        self._identity: dict[int, tuple[Value, Value, Value]] = {}  # last known name, uuid, bus id

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _init(self) -> NvmlInitError | None:
        if self._initialised:
            return None
        api = self.source.api
        try:
            api.nvmlInit()
        except pynvml.NVMLError as exc:
            return classify_init_error(exc)
        except OSError as exc:
            return classify_init_error(exc)
        self._initialised = True
        self._system = {
            "driver_version": text(query(api.nvmlSystemGetDriverVersion)),
            "nvml_version": text(query(api.nvmlSystemGetNVMLVersion)),
            "cuda_driver_version": query(api.nvmlSystemGetCudaDriverVersion),
        }
        return None

    def close(self) -> None:
        with self._lock:
            if self._initialised:
                query(self.source.api.nvmlShutdown, default=None)
            self._initialised = False
            self._static.clear()

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sampling --------------------------------------------------------------------------------------------
    def sample(self) -> HostSample:
        """One snapshot of every GPU. Never raises for NVML trouble: it is in the result."""
        with self._lock:
            self.source.begin_sample()
            now = time.time()
            err = self._init()
            if err is not None:
                return HostSample(ts=now, source=self.source.name, init_error=err)
            api = self.source.api
            try:
                count = query(api.nvmlDeviceGetCount, default=0)
            except DeviceFailure as exc:  # the whole driver stopped answering (seen after Xid 79)
                self._initialised = False
                self._static.clear()
                return HostSample(
                    ts=now,
                    source=self.source.name,
                    init_error=NvmlInitError(
                        "other",
                        f"NVML stopped answering ({exc.kind}); a GPU may have fallen off the bus.",
                        "Read `dmesg | grep -i -e xid -e nvrm`; reboot the host and check the GPU's power and "
                        "PCIe seating.",
                    ),
                )
            out = HostSample(ts=now, source=self.source.name, **self._system)
            for index in range(int(count) if isinstance(count, int) else 0):
                out.gpus.append(self._sample_device(api, index))
            return out

    def _static_for(self, api: Any, index: int) -> _Static:
        st = self._static.get(index)
        if st is not None:
            return st
        try:
            handle = api.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as exc:
            kind = {pynvml.NVMLError_GpuIsLost: "gpu_lost", pynvml.NVMLError_ResetRequired: "reset_required"}
            raise DeviceFailure(kind.get(type(exc), "unknown_error"), str(exc)) from None
        pci = query(api.nvmlDeviceGetPciInfo, handle)
        st = _Static(
            handle=handle,
            name=text(query(api.nvmlDeviceGetName, handle)),
            uuid=text(query(api.nvmlDeviceGetUUID, handle)),
            pci_bus_id=text(pci.busId) if pci != NA else NA,
            temp_slowdown=query(
                api.nvmlDeviceGetTemperatureThreshold, handle, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
            ),
            pcie_max_gen=query(api.nvmlDeviceGetMaxPcieLinkGeneration, handle),
            pcie_max_width=query(api.nvmlDeviceGetMaxPcieLinkWidth, handle),
        )
        self._static[index] = st
        return st

    def _sample_device(self, api: Any, index: int) -> GpuSample:
        g = GpuSample(index=index)
        try:
            st = self._static_for(api, index)
            g.name, g.uuid, g.pci_bus_id = st.name, st.uuid, st.pci_bus_id
            g.temp_slowdown, g.pcie_max_gen, g.pcie_max_width = (
                st.temp_slowdown,
                st.pcie_max_gen,
                st.pcie_max_width,
            )
            self._read_dynamic(api, st.handle, g)
            self._identity[index] = (st.name, st.uuid, st.pci_bus_id)
        except DeviceFailure as exc:
            g.error, g.error_detail = exc.kind, exc.detail
            g.processes = []
            self._static.pop(index, None)  # re-read everything once it comes back
            if index in self._identity:  # say which GPU it was, even though it no longer answers
                g.name, g.uuid, g.pci_bus_id = self._identity[index]
        return g

    def _read_dynamic(self, api: Any, h: Any, g: GpuSample) -> None:
        util = query(api.nvmlDeviceGetUtilizationRates, h)
        if util != NA:
            g.util_gpu, g.util_mem = util.gpu, util.memory
        mem = query(api.nvmlDeviceGetMemoryInfo, h)
        if mem != NA:
            g.mem_used, g.mem_total = int(mem.used), int(mem.total)
        g.temperature = query(api.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
        mw = query(api.nvmlDeviceGetPowerUsage, h)
        g.power_w = round(mw / 1000, 1) if isinstance(mw, int | float) else NA
        lim = query(api.nvmlDeviceGetEnforcedPowerLimit, h)
        g.power_limit_w = round(lim / 1000, 1) if isinstance(lim, int | float) else NA
        g.fan = query(api.nvmlDeviceGetFanSpeed, h)
        g.sm_clock = query(api.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM)
        g.mem_clock = query(api.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM)
        g.pstate = query(api.nvmlDeviceGetPerformanceState, h)
        g.throttle_mask = query(api.nvmlDeviceGetCurrentClocksThrottleReasons, h)
        g.throttle_reasons = throttle_names(g.throttle_mask)
        g.ecc_uncorrected = query(
            api.nvmlDeviceGetTotalEccErrors,
            h,
            pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            pynvml.NVML_VOLATILE_ECC,
        )
        sbe = query(
            api.nvmlDeviceGetRetiredPages, h, pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
        )
        dbe = query(api.nvmlDeviceGetRetiredPages, h, pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
        if sbe != NA or dbe != NA:
            g.retired_pages = (len(sbe) if sbe != NA else 0) + (len(dbe) if dbe != NA else 0)
        pending = query(api.nvmlDeviceGetRetiredPagesPendingStatus, h)
        g.retired_pending = bool(pending) if pending != NA else NA
        rows = query(api.nvmlDeviceGetRemappedRows, h)
        if rows != NA:
            corr, unc, pend, fail = rows
            g.remapped_corrected, g.remapped_uncorrected = int(corr), int(unc)
            g.remap_pending, g.remap_failure = bool(pend), bool(fail)
        g.pcie_gen = query(api.nvmlDeviceGetCurrPcieLinkGeneration, h)
        g.pcie_width = query(api.nvmlDeviceGetCurrPcieLinkWidth, h)
        procs = query(api.nvmlDeviceGetComputeRunningProcesses, h, default=[])
        for p in procs or []:
            used = getattr(p, "usedGpuMemory", None)
            if not isinstance(used, int) or used >= 2**63:  # NVML_VALUE_NOT_AVAILABLE
                used = None
            user, command = self.source.describe_process(int(p.pid))
            g.processes.append(ProcessInfo(pid=int(p.pid), used_memory=used, user=user, command=command))


def sample_once(source: Any = None) -> HostSample:
    """One sample, then NVML is shut down again (for CLI one-shots)."""
    with Sampler(source) as sampler:
        return sampler.sample()
