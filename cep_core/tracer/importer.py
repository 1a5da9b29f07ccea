"""Calls recorded elsewhere — production logs — into the trace store: `cep traces import FILE.jsonl`.

One JSON object per line with the keys `WorkflowTracer.capture_many` takes: `messages` (OpenAI style) or the
flat `system_prompt` / `user_query` / `assistant_response`; `agent_type`, `agent_name` and `model_used` (or
given once for the whole file); optional `tools`, `success`, `cost`, `execution_time`, `metadata`, `error` and
`captured_at` (when the call was made). Other keys are kept under `metadata`, not dropped.

The whole file is checked before anything is stored: a bad line stops the import and every bad line is
named (file:line and field, never its content, which may hold secrets), so the fixed file imports whole.
Importing is not idempotent: the same file imported twice is stored twice.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.tracer.capture import capture_time

REQUIRED = ("agent_type", "agent_name", "model_used")
FLAT = ("system_prompt", "user_query", "assistant_response")
OPTIONAL = ("tools", "success", "cost", "execution_time", "metadata", "error", "captured_at")
KNOWN = frozenset((*REQUIRED, *FLAT, *OPTIONAL, "messages"))
BATCH = 500
SHOWN_PROBLEMS = 20


@dataclass(slots=True)
class ImportCheck:
    """What the first pass found: how many calls, and every line that cannot be imported."""

    path: Path
    calls: int = 0
    problems: list[InputError] = field(default_factory=list)
    extra_keys: Counter[str] = field(default_factory=Counter)

    def raise_if_bad(self) -> None:
        if not self.problems:
            return
        shown = "\n".join(f"  {p}" for p in self.problems[:SHOWN_PROBLEMS])
        more = len(self.problems) - SHOWN_PROBLEMS
        tail = f"\n  … and {more} more" if more > 0 else ""
        raise InputError(
            f"{len(self.problems)} line(s) cannot be imported; nothing was stored:\n{shown}{tail}",
            path=self.path,
        )


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open("rb") as handle:
            yield from enumerate(handle, start=1)
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None


def _problem(path: Path, line: int, message: str, name: str | None = None) -> InputError:
    return InputError(message, path=path, line=line, field=name)


def check_line(
    path: Path, number: int, line: str | bytes, defaults: dict[str, str]
) -> dict[str, Any] | InputError:
    """One line as a capture_many call, or the reason it cannot be one."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError as exc:
        return _problem(path, number, f"not UTF-8 text (byte {exc.start + 1} of the line)")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return _problem(path, number, f"not JSON ({exc.msg}, column {exc.colno})")
    except RecursionError:
        return _problem(path, number, "not JSON this reader can take (nested too deeply)")
    if not isinstance(obj, dict):
        return _problem(path, number, f"a line must be a JSON object, not {type(obj).__name__}")
    call = {**defaults, **obj}
    for name in REQUIRED:
        value = call.get(name)
        if not isinstance(value, str) or not value.strip():
            hint = " (or give it for the whole file: --agent TYPE/NAME, --model M)"
            return _problem(path, number, f"missing or not a non-empty string{hint}", name)
    if "messages" in call:
        if not isinstance(call["messages"], list) or not call["messages"]:
            return _problem(path, number, "must be a non-empty list of messages", "messages")
    elif not any(
        isinstance(call.get(name), str) and call[name] for name in ("user_query", "assistant_response")
    ):
        return _problem(path, number, "needs `messages`, or `user_query` / `assistant_response`", "messages")
    if "success" in call and not isinstance(call["success"], bool):
        return _problem(path, number, "must be true or false", "success")
    for name in ("cost", "execution_time"):
        value = call.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _problem(path, number, f"must be a number (or null), not {_json_type(value)}", name)
        if not math.isfinite(value) or value < 0:
            return _problem(path, number, f"must be a finite number, 0 or more (got {value})", name)
    if call.get("captured_at") is not None and capture_time(call["captured_at"], []) is None:
        return _problem(
            path,
            number,
            "not a time: unix seconds or an ISO-8601 date-time such as 2026-05-01T09:30:00Z",
            "captured_at",
        )
    return call


def _json_type(value: Any) -> str:
    """The JSON name of a value's type (its content is never shown: it may hold a secret)."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "true/false" if isinstance(value, bool) else type(value).__name__


def _with_extras_in_metadata(call: dict[str, Any]) -> dict[str, Any]:
    extras = {k: call.pop(k) for k in list(call) if k not in KNOWN}
    if extras:
        metadata = call.get("metadata")
        metadata = (
            dict(metadata)
            if isinstance(metadata, dict)
            else ({} if metadata is None else {"value": metadata})
        )
        call["metadata"] = {**extras, **metadata}
    return call


def check_file(path: Path, defaults: dict[str, str] | None = None) -> ImportCheck:
    """The first pass: every line checked, nothing stored."""
    check = ImportCheck(path)
    for number, text in _lines(path):
        if not text.strip():
            continue
        result = check_line(path, number, text, defaults or {})
        if isinstance(result, InputError):
            check.problems.append(result)
        else:
            check.calls += 1
            check.extra_keys.update(k for k in result if k not in KNOWN)
    return check


def import_file(
    path: Path,
    capture_many: Callable[[list[dict[str, Any]]], list[str]],
    defaults: dict[str, str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """The second pass: store every call in batches (one transaction each); returns calls per agent.

    Call `check_file` first: a line that fails here stops the import with the batches so far stored."""
    per_agent: Counter[str] = Counter()
    batch: list[dict[str, Any]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        ids = capture_many(batch)
        if len(ids) != len(batch):
            raise InputError(f"the trace store took {len(ids)} of {len(batch)} calls", path=path)
        done += len(batch)
        batch.clear()
        if on_progress:
            on_progress(done)

    for number, text in _lines(path):
        if not text.strip():
            continue
        result = check_line(path, number, text, defaults or {})
        if isinstance(result, InputError):
            raise result
        per_agent[f"{result['agent_type']}/{result['agent_name']}"] += 1
        batch.append(_with_extras_in_metadata(result))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return per_agent
