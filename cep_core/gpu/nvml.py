"""The NVML layer: the one query function every NVML call goes through, init-error diagnosis, the NVML source.

Like nvitop's device layer: "not supported" (and other per-field refusals) become `NA` so one missing
field never stops a sample; the per-device failures (GPU is lost, reset required, unknown error) raise
`DeviceFailure`, which the sampler records on that device only. Importing this module does not load the
NVML library; `pynvml` itself is pure Python (ctypes) and light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pynvml

NA = "n/a"  # the value of a field the GPU or driver does not report
T = TypeVar("T")

# Per-device failures: the device is marked, the rest of the sample goes on.
DEVICE_FAILURES: dict[type[pynvml.NVMLError], str] = {
    pynvml.NVMLError_GpuIsLost: "gpu_lost",
    pynvml.NVMLError_ResetRequired: "reset_required",
    pynvml.NVMLError_Unknown: "unknown_error",
}


class DeviceFailure(Exception):
    """A device stopped answering: `kind` is gpu_lost, reset_required or unknown_error."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def query(func: Callable[..., T], *args: Any, default: Any = NA) -> T | str:
    """Call one NVML function. Refusals -> `default` ("n/a"); device failures -> DeviceFailure.

    Every NVML call of the sampler goes through here, so the rules live in one place.
    """
    try:
        return func(*args)
    except pynvml.NVMLError as exc:
        kind = DEVICE_FAILURES.get(type(exc))
        if kind is not None:
            raise DeviceFailure(kind, _nvml_text(exc)) from None
        return default  # NotSupported, NoPermission, FunctionNotFound, NoData, InvalidArgument, ...
    except (AttributeError, TypeError, OSError):  # an older pynvml without the function, a ctypes hiccup
        return default


def _nvml_text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return type(exc).__name__


def text(value: Any) -> Any:
    """NVML strings come back as bytes in some pynvml versions."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


# --- init failures ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NvmlInitError:
    """Why NVML could not start, in words a user can act on."""

    kind: str  # library_not_found | driver_not_loaded | version_mismatch | no_permission | other
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "fix": self.fix}


_INIT_ERRORS: dict[type[pynvml.NVMLError], tuple[str, str, str]] = {
    pynvml.NVMLError_LibraryNotFound: (
        "library_not_found",
        "NVML library not found (libnvidia-ml.so.1): no NVIDIA driver is installed on this machine, "
        "or its libraries are not on the loader path.",
        "Install the NVIDIA driver (e.g. `sudo apt install nvidia-driver-550` or the .run installer), "
        "or in a container run with the NVIDIA Container Toolkit (`--gpus all`); then check `nvidia-smi`.",
    ),
    pynvml.NVMLError_DriverNotLoaded: (
        "driver_not_loaded",
        "The NVIDIA kernel driver is not loaded (NVML library found, but no driver answers).",
        "Load it with `sudo modprobe nvidia` and read `dmesg | grep -i nvrm` for why it did not load "
        "(Secure Boot signing, a kernel update without DKMS rebuild); reboot if needed.",
    ),
    pynvml.NVMLError_LibRmVersionMismatch: (
        "version_mismatch",
        "Driver/library version mismatch: the loaded kernel module and libnvidia-ml are from different "
        "driver versions (usually after a driver upgrade without a reboot).",
        "Reboot the host (or stop all GPU processes and reload the modules: "
        "`sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia`).",
    ),
    pynvml.NVMLError_NoPermission: (
        "no_permission",
        "No permission to open the NVIDIA device files (/dev/nvidia*).",
        "Add your user to the group that owns /dev/nvidia* (often `video`) or check the container's "
        "device mounts.",
    ),
}


def classify_init_error(exc: BaseException) -> NvmlInitError:
    for cls, (kind, message, fix) in _INIT_ERRORS.items():
        if isinstance(exc, cls):
            return NvmlInitError(kind, message, fix)
    detail = _nvml_text(exc)
    if isinstance(exc, pynvml.NVMLError_Unknown) or "Unknown Error" in detail:
        return NvmlInitError(
            "other",
            f"NVML failed to initialize ({detail}); a GPU may have fallen off the bus.",
            "Read `dmesg | grep -i -e xid -e nvrm`; if a GPU fell off the bus (Xid 79), reboot the host "
            "and check its power and PCIe seating.",
        )
    return NvmlInitError(
        "other",
        f"NVML failed to initialize: {detail}",
        "Run `nvidia-smi` to see the driver's own message, and `dmesg | grep -i nvrm`.",
    )


# --- the NVML source ----------------------------------------------------------------------------------------


class NvmlSource:
    """The real thing: `api` is the `pynvml` module; processes are described with psutil."""

    name = "nvml"

    def __init__(self) -> None:
        from cep_core.gpu.processes import ProcessDescriber

        self.api: Any = pynvml
        self._describer = ProcessDescriber()

    def begin_sample(self) -> None:
        """Nothing to do: NVML reads live values."""

    def describe_process(self, pid: int) -> tuple[str | None, str | None]:
        return self._describer.describe(pid)
