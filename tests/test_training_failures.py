"""Error kinds from real exception types and the messages real failures print."""

from __future__ import annotations

import pytest

from cep_core.errors import InputError
from cep_core.runs import ERROR_KINDS
from cep_core.training.failures import ConfigError, DataError, ModelAccessError, classify, describe, redact


def _hub_error(cls_name: str, status: int):
    import httpx2
    from huggingface_hub import errors

    request = httpx2.Request("GET", "https://huggingface.co/api/models/meta-llama/Llama-3.1-8B-Instruct")
    response = httpx2.Response(status, request=request)
    return getattr(errors, cls_name)(
        "Access to model meta-llama/Llama-3.1-8B-Instruct is restricted.", response=response
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        # torch's own OOM type, and the message it carries (pytorch/pytorch issues).
        (
            RuntimeError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity; "
                "75.10 GiB already allocated)"
            ),
            "oom",
        ),
        # After Xid 79 the CUDA runtime reports an unknown error (NVIDIA forums, "GPU has fallen off the bus").
        (
            RuntimeError(
                "CUDA error: unknown error\nCUDA kernel errors might be asynchronously reported at some "
                "other API call"
            ),
            "gpu_lost",
        ),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), "gpu_lost"),
        (RuntimeError("Failed to initialize NVML: Driver/library version mismatch"), "nvml"),
        (
            OSError(
                "meta-llama/Llama-3.1-8B-Instruct is not a local folder and is not a valid model identifier "
                "listed on 'https://huggingface.co/models'"
            ),
            "model_access",
        ),
        # The CPU allocator (what `lora.r = 1e9` ran into on a CPU-only host) and Python's own MemoryError.
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                "you tried to allocate 256000000000 bytes. Error code 12 (Cannot allocate memory)"
            ),
            "oom",
        ),
        (MemoryError(), "oom"),
        (ConfigError("bad", field="train.packing"), "config"),
        (DataError("no rows"), "data"),
        (ModelAccessError("missing"), "model_access"),
        (InputError("malformed JSON", path="rows.jsonl", line=3), "data"),
        (ValueError("something else"), "unknown"),
    ],
)
def test_classify(exc, kind):
    assert classify(exc) == kind
    assert kind in ERROR_KINDS


def test_hub_errors_and_torch_oom_by_type():
    import torch

    assert classify(_hub_error("GatedRepoError", 403)) == "model_access"
    assert classify(_hub_error("RepositoryNotFoundError", 404)) == "model_access"
    assert classify(torch.OutOfMemoryError("CUDA out of memory.")) == "oom"


def test_cause_chain_is_followed():
    try:
        try:
            raise RuntimeError("CUDA error: unknown error")
        except RuntimeError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert classify(outer) == "gpu_lost"


def test_tokens_never_reach_messages():
    token = "hf_" + "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"
    assert token not in redact(f"401 for url with token {token}")
    assert token not in describe(OSError(f"Authorization: Bearer {token} rejected"))
    assert "[redacted]" in describe(RuntimeError(f"token={token}&x=1"))
