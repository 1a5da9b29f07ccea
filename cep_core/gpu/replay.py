"""A recorded GPU source: plays snapshots from a JSON file through the same API as `pynvml`.

The sampler, the health rules and the Xid event listener cannot tell it from NVML: fields missing or
"n/a" in the recording raise `NVMLError_NotSupported`, a device with `"error": "gpu_lost"` raises
`NVMLError_GpuIsLost`, a recording-level `init_error` makes `nvmlInit` fail the way the driver would.
Each `begin_sample()` moves to the next snapshot (the last one repeats, or the file loops).

Format (`cep-gpu-replay/1`)::

    {"format": "cep-gpu-replay/1", "description": "...",
     "system": {"driver_version": "550.54.15", "nvml_version": "12.550.54.15", "cuda_driver_version": 12040},
     "init_error": null,
     "snapshots": [{"devices": [{"index": 0, "name": "...", "uuid": "GPU-...", "pci_bus_id": "00000000:18:00.0",
                                 "util_gpu": 97, "util_mem": 41, "mem_used": 123, "mem_total": 456,
                                 "temperature": 64, "temp_slowdown": 87, "power_mw": 612000,
                                 "power_limit_mw": 700000, "fan": "n/a", "sm_clock": 1980, "mem_clock": 2619,
                                 "pstate": 0, "throttle_mask": 0, "ecc_uncorrected": 0,
                                 "retired_sbe": "n/a", "retired_dbe": "n/a", "retired_pending": "n/a",
                                 "remapped_rows": [0, 0, 0, 0], "pcie_gen": 5, "pcie_width": 16,
                                 "pcie_max_gen": 5, "pcie_max_width": 16,
                                 "processes": [{"pid": 4242, "used_memory": 123, "user": "ml",
                                                "command": "python train.py"}],
                                 "error": null}]}],
     "kernel_log": [{"snapshot": 3, "line": "[ 5107.644336] NVRM: Xid (PCI:0000:1b:00): 79, ..."}],
     "nvml_xid_events": [{"snapshot": 3, "index": 3, "xid": 79}]}
"""

from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

from cep_core.errors import InputError

FORMAT = "cep-gpu-replay/1"
RECORDINGS_DIR = Path(__file__).with_name("recordings")

_INIT_ERROR_CODES = {
    "library_not_found": pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
    "driver_not_loaded": pynvml.NVML_ERROR_DRIVER_NOT_LOADED,
    "version_mismatch": pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
    "no_permission": pynvml.NVML_ERROR_NO_PERMISSION,
    "unknown": pynvml.NVML_ERROR_UNKNOWN,
}
_DEVICE_ERROR_CODES = {
    "gpu_lost": pynvml.NVML_ERROR_GPU_IS_LOST,
    "reset_required": pynvml.NVML_ERROR_RESET_REQUIRED,
    "unknown_error": pynvml.NVML_ERROR_UNKNOWN,
}


def _not_supported() -> pynvml.NVMLError:
    return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)


def load_recording(path: str | Path) -> dict[str, Any]:
    """Read and check a recording; errors name the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("replay file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read replay file: {exc}", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError("a replay file is a JSON object", path)
    if data.get("format") != FORMAT:
        raise InputError(f"unknown format {data.get('format')!r}, expected {FORMAT!r}", path, field="format")
    snaps = data.get("snapshots")
    if not isinstance(snaps, list) or not snaps:
        raise InputError("needs a non-empty list of snapshots", path, field="snapshots")
    for i, snap in enumerate(snaps):
        devices = snap.get("devices") if isinstance(snap, dict) else None
        if not isinstance(devices, list):
            raise InputError("each snapshot needs a list of devices", path, field=f"snapshots[{i}].devices")
        for j, dev in enumerate(devices):
            if not isinstance(dev, dict) or not isinstance(dev.get("index"), int):
                raise InputError(
                    "each device needs an integer index", path, field=f"snapshots[{i}].devices[{j}].index"
                )
            err = dev.get("error")
            if err is not None and err not in _DEVICE_ERROR_CODES:
                raise InputError(
                    f"unknown device error {err!r} (use one of {sorted(_DEVICE_ERROR_CODES)})",
                    path,
                    field=f"snapshots[{i}].devices[{j}].error",
                )
    init_error = data.get("init_error")
    if init_error is not None and init_error not in _INIT_ERROR_CODES:
        raise InputError(
            f"unknown init_error {init_error!r} (use one of {sorted(_INIT_ERROR_CODES)})",
            path,
            field="init_error",
        )
    return data


def bundled_recording(name: str) -> Path:
    """A recording shipped inside the package (the console's demo mode uses `healthy-8x-h100`)."""
    return RECORDINGS_DIR / f"{name}.json"


class _Handle:
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __repr__(self) -> str:
        return f"<replay GPU {self.index}>"


class ReplayApi:
    """The subset of `pynvml` the sampler and the event listener use, answered from a recording."""

    def __init__(self, source: ReplaySource):
        self._src = source
        self._events: collections.deque[SimpleNamespace] = collections.deque()
        self._cond = threading.Condition()

    # -- helpers ---------------------------------------------------------------------------------------------
    def _device(self, handle: _Handle) -> dict[str, Any]:
        dev = self._src.devices().get(handle.index)
        if dev is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        err = dev.get("error")
        if err:
            raise pynvml.NVMLError(_DEVICE_ERROR_CODES[err])
        return dev

    def _field(self, handle: _Handle, key: str) -> Any:
        value = self._device(handle).get(key, "n/a")
        if value == "n/a" or value is None:
            raise _not_supported()
        return value

    # -- system ----------------------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        err = self._src.current().get("init_error", self._src.data.get("init_error"))
        if err:
            raise pynvml.NVMLError(_INIT_ERROR_CODES[err])

    def nvmlShutdown(self) -> None:
        pass

    def _system(self, key: str) -> Any:
        value = self._src.data.get("system", {}).get(key, "n/a")
        if value == "n/a":
            raise _not_supported()
        return value

    def nvmlSystemGetDriverVersion(self) -> str:
        return self._system("driver_version")

    def nvmlSystemGetNVMLVersion(self) -> str:
        return self._system("nvml_version")

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self._system("cuda_driver_version")

    def nvmlDeviceGetCount(self) -> int:
        devices = self._src.devices()
        return max(devices) + 1 if devices else 0

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        handle = _Handle(index)
        self._device(handle)
        return handle

    # -- static ----------------------------------------------------------------------------------------------
    def nvmlDeviceGetName(self, h: _Handle) -> str:
        return self._field(h, "name")

    def nvmlDeviceGetUUID(self, h: _Handle) -> str:
        return self._field(h, "uuid")

    def nvmlDeviceGetPciInfo(self, h: _Handle) -> SimpleNamespace:
        return SimpleNamespace(busId=self._field(h, "pci_bus_id"))

    def nvmlDeviceGetTemperatureThreshold(self, h: _Handle, kind: int) -> int:
        return self._field(h, "temp_slowdown")

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: _Handle) -> int:
        return self._field(h, "pcie_max_gen")

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: _Handle) -> int:
        return self._field(h, "pcie_max_width")

    # -- dynamic ---------------------------------------------------------------------------------------------
    def nvmlDeviceGetUtilizationRates(self, h: _Handle) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._field(h, "util_gpu"), memory=self._field(h, "util_mem"))

    def nvmlDeviceGetMemoryInfo(self, h: _Handle) -> SimpleNamespace:
        used, total = self._field(h, "mem_used"), self._field(h, "mem_total")
        return SimpleNamespace(used=used, total=total, free=total - used)

    def nvmlDeviceGetTemperature(self, h: _Handle, sensor: int) -> int:
        return self._field(h, "temperature")

    def nvmlDeviceGetPowerUsage(self, h: _Handle) -> int:
        return self._field(h, "power_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: _Handle) -> int:
        return self._field(h, "power_limit_mw")

    def nvmlDeviceGetFanSpeed(self, h: _Handle) -> int:
        return self._field(h, "fan")

    def nvmlDeviceGetClockInfo(self, h: _Handle, clock: int) -> int:
        return self._field(h, "sm_clock" if clock == pynvml.NVML_CLOCK_SM else "mem_clock")

    def nvmlDeviceGetPerformanceState(self, h: _Handle) -> int:
        return self._field(h, "pstate")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: _Handle) -> int:
        return self._field(h, "throttle_mask")

    def nvmlDeviceGetTotalEccErrors(self, h: _Handle, error_type: int, counter: int) -> int:
        return self._field(h, "ecc_uncorrected")

    def nvmlDeviceGetRetiredPages(self, h: _Handle, cause: int) -> list[int]:
        key = (
            "retired_dbe"
            if cause == pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
            else "retired_sbe"
        )
        return self._field(h, key)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: _Handle) -> int:
        return self._field(h, "retired_pending")

    def nvmlDeviceGetRemappedRows(self, h: _Handle) -> tuple[int, int, int, int]:
        return tuple(self._field(h, "remapped_rows"))  # type: ignore[return-value]

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: _Handle) -> int:
        return self._field(h, "pcie_gen")

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: _Handle) -> int:
        return self._field(h, "pcie_width")

    def nvmlDeviceGetComputeRunningProcesses(self, h: _Handle) -> list[SimpleNamespace]:
        procs = self._device(h).get("processes", [])
        return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p.get("used_memory")) for p in procs]

    # -- the Xid event API -----------------------------------------------------------------------------------
    def nvmlEventSetCreate(self) -> object:
        return object()

    def nvmlDeviceRegisterEvents(self, h: _Handle, event_types: int, event_set: object) -> None:
        self._device(h)

    def nvmlEventSetFree(self, event_set: object) -> None:
        pass

    def _post_event(self, index: int, xid: int) -> None:
        with self._cond:
            self._events.append(
                SimpleNamespace(
                    device=_Handle(index),
                    eventType=pynvml.nvmlEventTypeXidCriticalError,
                    eventData=xid,
                    gpuInstanceId=0xFFFFFFFF,
                    computeInstanceId=0xFFFFFFFF,
                )
            )
            self._cond.notify_all()

    def nvmlEventSetWait_v2(self, event_set: object, timeout_ms: int) -> SimpleNamespace:
        with self._cond:
            if not self._events:
                self._cond.wait(timeout_ms / 1000)
            if not self._events:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)
            return self._events.popleft()


class ReplaySource:
    """Plays a recording. `loop=True` starts again after the last snapshot (the console's demo mode)."""

    name = "replay"

    def __init__(self, path: str | Path, loop: bool = False, start: int | None = None):
        """`start`: the snapshot the first sample shows (negative counts from the end; default 0)."""
        self.path = Path(path)
        self.data = load_recording(self.path)
        self.loop = loop
        self.position = -1 if start is None else (start % len(self.data["snapshots"])) - 1
        self.api = ReplayApi(self)
        self._lock = threading.Lock()
        for ev in self.data.get("nvml_xid_events", []):  # events of the snapshots skipped by `start`
            if 0 <= int(ev.get("snapshot", 0)) <= self.position:
                self.api._post_event(int(ev["index"]), int(ev["xid"]))

    @property
    def snapshots(self) -> list[dict[str, Any]]:
        return self.data["snapshots"]

    def current(self) -> dict[str, Any]:
        return self.snapshots[max(self.position, 0)]

    def devices(self) -> dict[int, dict[str, Any]]:
        return {d["index"]: d for d in self.current()["devices"]}

    def begin_sample(self) -> None:
        """Move to the next snapshot and release the NVML Xid events recorded for it."""
        with self._lock:
            last = len(self.snapshots) - 1
            if self.position < last:
                self.position += 1
            elif self.loop:
                self.position = 0
            else:
                return
            for ev in self.data.get("nvml_xid_events", []):
                if ev.get("snapshot") == self.position:
                    self.api._post_event(int(ev["index"]), int(ev["xid"]))

    def describe_process(self, pid: int) -> tuple[str | None, str | None]:
        for dev in self.current()["devices"]:
            for p in dev.get("processes", []):
                if p.get("pid") == pid:
                    return p.get("user"), p.get("command")
        return None, None

    def kernel_log_lines(self) -> list[str]:
        """The recorded kernel-log lines printed up to the current snapshot."""
        pos = max(self.position, 0)
        return [
            str(rec["line"])
            for rec in self.data.get("kernel_log", [])
            if isinstance(rec, dict) and int(rec.get("snapshot", 0)) <= pos
        ]

    def recorded_at(self) -> float:
        return float(self.data.get("recorded_at", time.time()))
