"""Which checkpoint to resume from: the newest one that is complete.

A job killed while saving leaves a checkpoint directory without its trainer state, or with a truncated adapter
or optimizer file. Such a checkpoint is set aside (renamed, not deleted) and the previous one is used.
Validation reads file headers only (safetensors header and sizes, zip central directories), never the tensors.
"""

from __future__ import annotations

import json
import re
import struct
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
TORCH_ZIP_FILES = ("optimizer.pt", "scheduler.pt")


@dataclass(frozen=True, slots=True)
class Verdict:
    path: Path
    step: int
    valid: bool
    reason: str = ""


def checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every `checkpoint-N` directory, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))
    ]
    return sorted(found, reverse=True)


def validate(path: str | Path) -> Verdict:
    path = Path(path)
    match = _CHECKPOINT.match(path.name)
    step = int(match.group(1)) if match else -1
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return Verdict(path, step, False, "trainer_state.json missing or unreadable")
    if not isinstance(state, dict) or state.get("global_step") != step:
        return Verdict(path, step, False, "trainer_state.json does not match the checkpoint step")
    adapter = next((path / name for name in ADAPTER_FILES if (path / name).is_file()), None)
    if adapter is None:
        return Verdict(path, step, False, "no adapter weights")
    if adapter.suffix == ".safetensors" and not safetensors_complete(adapter):
        return Verdict(path, step, False, f"{adapter.name} is truncated or corrupt")
    if adapter.suffix == ".bin" and not zip_complete(adapter):
        return Verdict(path, step, False, f"{adapter.name} is truncated or corrupt")
    for name in TORCH_ZIP_FILES:
        if not zip_complete(path / name):
            return Verdict(path, step, False, f"{name} missing, truncated or corrupt")
    return Verdict(path, step, True)


def safetensors_complete(path: Path) -> bool:
    """The file is as long as its header says (a truncated write is shorter)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) != 8:
                return False
            (header_len,) = struct.unpack("<Q", head)
            if header_len > 100_000_000:
                return False
            header = json.loads(handle.read(header_len))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        return path.stat().st_size == 8 + header_len + end
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return False


def zip_complete(path: Path) -> bool:
    """torch.save writes a zip archive; a truncated one has no central directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def find_resume_checkpoint(
    folder: str | Path, set_aside_invalid: bool = True
) -> tuple[Path | None, list[Verdict]]:
    """The newest valid checkpoint (or None), and the verdicts on the newer ones that were rejected."""
    rejected: list[Verdict] = []
    for _step, path in checkpoints(folder):
        verdict = validate(path)
        if verdict.valid:
            return path, rejected
        rejected.append(verdict)
        if set_aside_invalid:
            path.rename(path.with_name(f"invalid-{path.name}-{int(time.time())}"))
    return None, rejected
