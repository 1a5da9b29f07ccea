"""Turn what a caller hands the tracer into one redacted TraceRow.

Two shapes come in: the flat fields of `capture_call` (system prompt, user query, response) and a whole
OpenAI-style `messages` list, where assistant turns may carry `tool_calls` whose `arguments` are JSON
strings and `tool` turns carry results. Both become the same normalised conversation:
`{"role", "content", "tool_calls": [{"id", "name", "arguments": {...}}], "tool_call_id", "name"}`.
Nothing here raises on odd input; what cannot be understood is kept as text and noted in
`metadata["_capture_warnings"]`, which the exporter reads to skip the row with a reason.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from cep_core.formats.jsonish import loads_lenient
from cep_core.formats.toolcalls import ToolCall, render_target
from cep_core.tracer.ids import new_id
from cep_core.tracer.redact import Redactor
from cep_core.tracer.store import TraceRow

WARNINGS_KEY = "_capture_warnings"
LATEST_CAPTURE_TIME = 2**48 / 1000  # an id holds 48 bits of milliseconds (the year 10889)
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def content_text(content: Any) -> str:
    """Message content as text: strings pass; OpenAI multi-part content keeps its text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


def _as_dict(message: Any) -> dict[str, Any]:
    if isinstance(message, dict):
        return message
    if hasattr(message, "model_dump"):  # openai / pydantic message objects
        return message.model_dump()
    if hasattr(message, "__dict__"):
        return dict(vars(message))
    return {"role": "user", "content": str(message)}


def _tool_call(raw: Any, where: str, warnings: list[str]) -> dict[str, Any]:
    raw = _as_dict(raw)
    fn = raw.get("function") if isinstance(raw.get("function"), dict) else raw
    fn = _as_dict(fn)
    name = str(fn.get("name") or "")
    args = fn.get("arguments", fn.get("parameters", {}))
    call: dict[str, Any] = {"id": str(raw.get("id") or ""), "name": name, "arguments": {}}
    if isinstance(args, str):
        value, _strict = loads_lenient(args) if args.strip() else ({}, True)
        if isinstance(value, dict):
            call["arguments"] = value
        else:
            call["arguments_raw"] = args
            warnings.append(f"{where}: arguments of tool call {name!r} are not a JSON object")
    elif isinstance(args, dict):
        call["arguments"] = args
    elif args is not None:
        call["arguments_raw"] = str(args)
        warnings.append(f"{where}: arguments of tool call {name!r} are not a JSON object")
    if not name:
        warnings.append(f"{where}: a tool call has no function name")
    return call


def normalize_messages(messages: Any, warnings: list[str]) -> list[dict[str, Any]]:
    """OpenAI-style messages in, the tracer's normalised conversation out."""
    if not isinstance(messages, list | tuple):
        warnings.append("messages is not a list")
        return []
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(messages):
        msg = _as_dict(raw)
        role = str(msg.get("role") or "user")
        if role not in _ROLES:
            warnings.append(f"message {i}: unknown role {role!r}, kept as user")
            role = "user"
        if role == "developer":
            role = "system"
        norm: dict[str, Any] = {
            "role": "tool" if role == "function" else role,
            "content": content_text(msg.get("content")),
        }
        if role == "assistant":
            raw_calls = msg.get("tool_calls") or []
            if isinstance(raw_calls, dict):
                raw_calls = [raw_calls]
            elif not isinstance(raw_calls, list | tuple):
                warnings.append(f"message {i}: tool_calls is not a list; dropped")
                raw_calls = []
            calls = [_tool_call(c, f"message {i}", warnings) for c in raw_calls]
            if isinstance(msg.get("function_call"), dict):  # the legacy single-call field
                calls.append(_tool_call(msg["function_call"], f"message {i}", warnings))
            if calls:
                norm["tool_calls"] = calls
        if norm["role"] == "tool":
            if msg.get("tool_call_id"):
                norm["tool_call_id"] = str(msg["tool_call_id"])
            if msg.get("name"):
                norm["name"] = str(msg["name"])
        out.append(norm)
    return out


def assistant_text(message: dict[str, Any]) -> str:
    """An assistant turn as one text: its content, then its tool calls in the target format."""
    text = message.get("content") or ""
    calls = [ToolCall(c["name"], c.get("arguments") or {}) for c in message.get("tool_calls", [])]
    if calls:
        rendered = render_target(calls)
        text = f"{text.rstrip()}\n{rendered}" if text.strip() else rendered
    return text


def summary_fields(messages: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(system prompt, last user query, last assistant answer) of a conversation, for listing and search."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m["content"])
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    answer = next((assistant_text(m) for m in reversed(messages) if m["role"] == "assistant"), "")
    return system, user, answer


def build_row(
    *,
    agent_type: str,
    agent_name: str,
    model: str,
    messages: list[dict[str, Any]],
    tools: Any,
    success: bool,
    cost: float | None,
    execution_time: float | None,
    error: str | None,
    metadata: Any,
    redactor: Redactor,
    warnings: list[str],
    captured_at: Any = None,
) -> TraceRow:
    """Redact every text field and assemble the row to store, stamped now or at `captured_at`."""
    given = capture_time(captured_at, warnings)
    cost = _num(cost, "cost", warnings)
    execution_time = _num(execution_time, "execution_time", warnings)
    now = time.time() if given is None else given
    total = 0
    messages, n = redactor.data(messages)
    total += n
    tools_list = [_as_dict(t) for t in tools] if isinstance(tools, list | tuple) else []
    if tools is not None and not isinstance(tools, list | tuple):
        warnings.append("tools is not a list; dropped")
    tools_list, n = redactor.data(tools_list)
    total += n
    meta = dict(metadata) if isinstance(metadata, dict) else ({} if metadata is None else {"value": metadata})
    if warnings:
        meta[WARNINGS_KEY] = list(warnings)
    meta, n = redactor.data(meta)
    total += n
    err = None
    if error is not None:
        err, n = redactor.text(str(error))
        total += n
    labels = []
    for label in (agent_type, agent_name, model):
        text, n = redactor.text(str(label or ""))
        labels.append(text)
        total += n
    system, user, answer = summary_fields(messages)
    return TraceRow(
        id=new_id(given),
        ts=now,
        agent_type=labels[0] or "unknown",
        agent_name=labels[1] or "default",
        model=labels[2] or "unknown",
        system_prompt=system,
        user_query=user,
        response=answer,
        messages=messages,
        tools=tools_list,
        success=bool(success),
        cost=cost,
        execution_time=execution_time,
        error=err,
        metadata=meta,
        redactions=total,
    )


def capture_time(value: Any, warnings: list[str]) -> float | None:
    """When a call was made, for calls recorded after the fact (backfilled from logs): unix seconds, a
    datetime or an ISO-8601 string. None means now; a value that is not a time is noted and now is used."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.strip())
        if isinstance(value, datetime):
            value = value.timestamp()
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and math.isfinite(value) and 0 < value < LATEST_CAPTURE_TIME:
            return float(value)
    except (ValueError, OverflowError, OSError):
        pass
    warnings.append(f"captured_at {str(value)[:40]!r} is not a time; the capture time is used")
    return None


def _num(value: Any, name: str, warnings: list[str]) -> float | None:
    """A cost or a duration: a finite number, 0 or more. Anything else is stored as null and noted (an
    infinity would make `list --json` print `Infinity`, which is not JSON)."""
    if value is None:
        return None
    number = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        warnings.append(f"{name} {str(value)[:40]!r} is not a finite number of 0 or more; stored as null")
        return None
    return number
