"""What went wrong, in one word: the `kind` of an `error` event, classified from the exception.

The console and the auto-resume policy act on the kind (a lost GPU is worth a resume on another device, a
bad config is not), so the rules are explicit and tested on the messages real failures print. Messages are
scrubbed of tokens before they reach a progress line or a log.
"""

from __future__ import annotations

import re

from cep_core.errors import InputError

# Access tokens (Hugging Face, generic bearer) never leave the process.
_SECRETS = re.compile(r"hf_[A-Za-z0-9]{20,}|(?i:bearer\s+)[A-Za-z0-9._-]{16,}|(?i:token=)[^\s&]+")

_OOM = re.compile(
    r"out of memory|CUBLAS_STATUS_ALLOC_FAILED|OutOfMemoryError|"
    r"DefaultCPUAllocator: can't allocate memory|Cannot allocate memory",  # the CPU allocator (torch, errno 12)
    re.IGNORECASE,
)
_GPU_LOST = re.compile(
    r"CUDA error: unknown error|GPU is lost|fallen off the bus|Xid|CUDA-capable device\(s\) is/are busy|"
    r"no CUDA-capable device|CUDA driver initialization failed|cudaErrorDevicesUnavailable|"
    r"CUDA error: an illegal memory access|device-side assert|CUDA error: launch failure|"
    r"uncorrectable ECC error|CUDA_ERROR_ECC_UNCORRECTABLE|unspecified launch failure",
    re.IGNORECASE,
)
_NVML = re.compile(r"NVML|nvmlInit|Failed to initialize NVML|Driver/library version mismatch", re.IGNORECASE)
_MODEL_ACCESS = re.compile(
    r"gated repo|401 Client Error|403 Client Error|Repository Not Found|is not a local folder and is not a valid "
    r"model identifier|Cannot access gated repo|LocalEntryNotFoundError|couldn't connect to 'https://huggingface.co'|"
    r"offline mode is enabled|does not appear to have a file named|Can't load tokenizer",
    re.IGNORECASE,
)
_MODEL_ACCESS_TYPES = {
    "GatedRepoError",
    "RepositoryNotFoundError",
    "LocalEntryNotFoundError",
    "HfHubHTTPError",
    "RevisionNotFoundError",
    "EntryNotFoundError",
    "OfflineModeIsEnabled",
}
_DATA_TYPES = {
    "DatasetGenerationError",
    "DatasetNotFoundError",
    "DataFilesNotFoundError",
    "EmptyDatasetError",
}


class ConfigError(InputError):
    """A configuration that cannot run (raised before any GPU time is spent)."""


class DataError(InputError):
    """Training data that cannot be used (no rows left after filtering, unreadable file)."""


class ModelAccessError(InputError):
    """A model that cannot be reached: missing local files, gated or missing on the Hub, offline without cache."""


def redact(text: str) -> str:
    return _SECRETS.sub("[redacted]", text)


def classify(exc: BaseException, _depth: int = 0) -> str:
    """One of runs.ERROR_KINDS for an exception (its class chain and message both count)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ConfigError):
        return "config"
    if isinstance(exc, DataError) or names & _DATA_TYPES:
        return "data"
    if isinstance(exc, ModelAccessError) or names & _MODEL_ACCESS_TYPES:
        return "model_access"
    if names & {"OutOfMemoryError", "MemoryError"} or _OOM.search(message):
        return "oom"
    if "NVMLError" in names or any(n.startswith("NVMLError") for n in names):
        return "nvml"
    if _GPU_LOST.search(message):
        return "gpu_lost"
    if _NVML.search(message):
        return "nvml"
    if _MODEL_ACCESS.search(message):
        return "model_access"
    if isinstance(exc, InputError):
        return "data" if exc.path and not str(exc.path).endswith(".toml") else "config"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and _depth < 5:
        return classify(cause, _depth + 1)
    return "unknown"


def describe(exc: BaseException) -> str:
    """A one-line, secret-free message for the error event."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, InputError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return redact(text)[:2000]
