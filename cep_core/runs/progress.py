"""progress.jsonl, the event log a job appends and everything else reads: the schema, the writer, and a
tolerant reader that type-checks every known field (a corrupt line is skipped, a bad value dropped and named),
whole (`iter_progress`) or as it grows (`ProgressTail`). What the events add up to is runs/fold.py's."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cep_core.formats.jsonish import finite, strict_json
from cep_core.runs.layout import PROGRESS
from cep_core.runs.tail import READ_BYTES, LogTail
from cep_core.store.private import open_private, private_dir

# The event schema: each event's fields beyond `ts` and `event` (a reader must accept more fields than these).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "preflight": ("checks",),
    "data": ("rows", "train_rows", "holdout_rows", "skipped"),
    "start": ("total_steps", "world_size", "model", "cep_variant", "cep_sha256", "resumed_from"),
    "step": (
        "step",
        "total_steps",
        "epoch",
        "loss",
        "learning_rate",
        "grad_norm",
        "tokens",
        "tokens_per_s",
        "eta_s",
    ),
    "eval": ("step", "metrics"),
    "checkpoint": ("step", "path"),
    "end": ("status", "step"),
    "error": ("kind", "message"),
    # Written by job control, not the job: a supervisor's decision about this run (relaunch, wait, give up).
    "job": ("action", "reason", "job_id", "attempt"),
}
# What each known field must hold, whatever event it is in. A reader drops a value that does not (a string
# where a count belongs; NaN or an infinity, which JSON readers make of `NaN` or `1e400`) and names the field
# in the event's `_invalid` list: code after the reader sees a missing value, never a wrong type. null is
# always allowed (unknown).
_COUNT, _POSITIVE, _NUMBER, _TEXT, _OBJECT, _LIST = "count", "positive", "number", "text", "object", "list"
FIELD_TYPES: dict[str, str] = {
    "ts": _NUMBER,
    "checks": _LIST,
    "rows": _COUNT,
    "train_rows": _COUNT,
    "holdout_rows": _COUNT,
    "skipped": _OBJECT,
    "total_steps": _POSITIVE,
    "world_size": _POSITIVE,
    "model": _TEXT,
    "cep_variant": _TEXT,
    "cep_sha256": _TEXT,
    "resumed_from": _COUNT,
    "step": _COUNT,
    "epoch": _NUMBER,
    "loss": _NUMBER,
    "learning_rate": _NUMBER,
    "grad_norm": _NUMBER,
    "tokens": _COUNT,
    "tokens_per_s": _NUMBER,
    "eta_s": _NUMBER,
    "metrics": _OBJECT,
    "path": _TEXT,
    "status": _TEXT,
    "kind": _TEXT,
    "message": _TEXT,
    "action": _TEXT,
    "reason": _TEXT,
    "job_id": _TEXT,
    "attempt": _POSITIVE,
}
INVALID_KEY = "_invalid"
END_STATUSES = ("completed", "stopped")
ERROR_KINDS = ("oom", "gpu_lost", "nvml", "data", "model_access", "config", "unknown")


class ProgressWriter:
    """Appends events to progress.jsonl: one JSON object per line, flushed at once, never rewritten."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        private_dir(self.path.parent)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        if event not in EVENT_FIELDS:
            raise ValueError(f"unknown progress event {event!r}")
        if event == "error" and fields.get("kind") not in ERROR_KINDS:
            fields["kind"] = "unknown"
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        line = strict_json(record) + "\n"
        # One write call on an O_APPEND descriptor: a reader never sees half of a line from us unless we die
        # mid-write, and a reader skips such a line.
        fd = open_private(self.path)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        return record


def _holds(kind: str, value: Any) -> bool:
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _OBJECT:
        return isinstance(value, dict)
    if kind == _LIST:
        return isinstance(value, list)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind == _NUMBER:
        return math.isfinite(value)
    return isinstance(value, int) and value >= (1 if kind == _POSITIVE else 0)


def checked_event(obj: dict[str, Any]) -> dict[str, Any]:
    """An event with every known field of the right type: a bad value is dropped and named in `_invalid`;
    non-finite numbers nested in objects (eval metrics) become null."""
    invalid = []
    for key, value in list(obj.items()):
        kind = FIELD_TYPES.get(key)
        if value is None or kind is None:
            obj[key] = finite(value)
            continue
        if not _holds(kind, value):
            del obj[key]
            invalid.append(key)
        elif kind in (_OBJECT, _LIST):
            obj[key] = finite(value)
    if invalid:
        obj[INVALID_KEY] = invalid
    return obj


def event_of(line: str | bytes) -> dict[str, Any] | None:
    """One line of progress.jsonl as a checked event; None when it is not a JSON object with an `event`."""
    try:
        obj = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("event"), str):
        return checked_event(obj)
    return None


def progress_path(path_or_run_dir: str | Path) -> Path:
    """Readers take a run directory or the file itself."""
    path = Path(path_or_run_dir)
    return path / PROGRESS if path.is_dir() else path


def iter_progress(path_or_run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Events of a progress file (or of a run directory), skipping lines that are not JSON objects with an
    event; known fields are type-checked (`checked_event`), so a hand-edited or corrupt line cannot put a
    string where a count belongs or an infinity where a loss belongs."""
    try:
        handle = progress_path(path_or_run_dir).open("rb")
    except OSError:
        return
    with handle:
        for raw in handle:
            event = event_of(raw)
            if event is not None:
                yield event


def read_progress(path_or_run_dir: str | Path) -> list[dict[str, Any]]:
    return list(iter_progress(path_or_run_dir))


class ProgressTail:
    """The events appended since the last `read_new()`, each once, for a follower that must not re-read the
    whole log every poll (`cep train`). Only complete lines count: one being written waits for its end. Reads
    are LogTail's (bounded, a truncated or replaced file read again from its start); every line is checked
    as iter_progress checks it (bytes that are not UTF-8 are read as U+FFFD here, where iter_progress skips
    the line)."""

    def __init__(self, path_or_run_dir: str | Path, *, from_end: bool = False):
        # An event line is small; one longer than a read is split by LogTail, and its pieces are not JSON.
        self._tail = LogTail(
            progress_path(path_or_run_dir), skip_bytes=None, max_line_bytes=READ_BYTES, from_end=from_end
        )

    def read_new(self) -> list[dict[str, Any]]:
        return [e for line in self._tail.read_all_new() if (e := event_of(line)) is not None]
