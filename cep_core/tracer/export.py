"""Traces to training data: Hermes-format JSONL that the training job reads unchanged.

Each exported row is `{"id", "conversations": [{"from": "system"|"human"|"gpt"|"tool", "value"}], "agent",
"model", "source", "content_hash"}`. The system turn carries the tools the way all training data in this
project has them (`toolprompt.render_tools_prompt`); assistant tool calls are written in the target format
(`toolcalls.render_target`); tool results are `<tool_response>` blocks as in the Hermes dataset.
Rows are de-duplicated by a hash of their conversation, and split into train/holdout by that same hash, so
the split is deterministic and an example never moves between the two from one export to the next.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.formats.jsonish import strict_json
from cep_core.formats.taxonomy import ErrorCategory
from cep_core.formats.toolcalls import parse_tool_calls, render_target
from cep_core.prompts.toolprompt import render_tools_prompt
from cep_core.store.private import atomic_file, private_dir, write_json
from cep_core.store.state import resolve_home
from cep_core.tracer.capture import WARNINGS_KEY, assistant_text
from cep_core.tracer.query import TraceFilter
from cep_core.tracer.redact import Redactor
from cep_core.tracer.store import TraceRow, TraceStore
from cep_core.tracer.thresholds import AgentKey, record_watermark

CHUNK = 1000
ROLE_TO_FROM = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


@dataclass
class ExportResult:
    train_path: Path
    holdout_path: Path
    manifest_path: Path
    train: int = 0
    holdout: int = 0
    duplicates: int = 0
    redactions: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    last_ids: dict[AgentKey, str] = field(default_factory=dict)  # agent -> newest trace id included

    @property
    def examples(self) -> int:
        return self.train + self.holdout

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_path": str(self.train_path),
            "holdout_path": str(self.holdout_path),
            "manifest_path": str(self.manifest_path),
            "train": self.train,
            "holdout": self.holdout,
            "duplicates": self.duplicates,
            "redactions": self.redactions,
            "skipped": self.skipped,
            "last_ids": {str(k): v for k, v in self.last_ids.items()},
        }


def default_export_dir(agent: AgentKey | None = None) -> Path:
    name = f"{agent.agent_type}-{agent.agent_name}".replace("/", "_") if agent else "all"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return resolve_home() / "datasets" / f"traces-{name}-{stamp}"


def _gpt_value(message: dict[str, Any]) -> str:
    """The assistant turn; a clean Hermes-format call in its text is rewritten to the target format."""
    text = assistant_text(message)
    if "<tool_call>" in text:
        parsed = parse_tool_calls(text, expected="target")
        if parsed.calls and parsed.source == "hermes" and set(parsed.errors) <= {ErrorCategory.WRONG_FORMAT}:
            return render_target(parsed.calls)
    return text


def _tool_value(message: dict[str, Any], names: dict[str, str]) -> str:
    content: Any = message.get("content") or ""
    with contextlib.suppress(ValueError, TypeError):
        content = json.loads(content)
    name = message.get("name") or names.get(message.get("tool_call_id", ""), "")
    return (
        "<tool_response>\n"
        + json.dumps({"name": name, "content": content}, ensure_ascii=False)
        + "\n</tool_response>"
    )


def to_conversations(row: TraceRow) -> tuple[list[dict[str, str]] | None, str | None]:
    """A trace as Hermes turns, or (None, reason) when it cannot be training data."""
    if row.metadata.get(WARNINGS_KEY):
        return None, "malformed capture (" + str(row.metadata[WARNINGS_KEY][0]).split(": ", 1)[-1] + ")"
    messages = [m for m in row.messages if m.get("role") in ROLE_TO_FROM]
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last_assistant is None:
        return None, "no assistant turn"
    messages = messages[: last_assistant + 1]  # tool results after the last answer teach nothing
    if not assistant_text(messages[-1]).strip():
        return None, "empty assistant answer"
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m["content"])
    if row.tools:
        system = render_tools_prompt(row.tools, system)
    turns: list[dict[str, str]] = [{"from": "system", "value": system}] if system else []
    names: dict[str, str] = {}
    for m in messages:
        role = m["role"]
        if role == "system":
            continue
        if role == "assistant":
            for call in m.get("tool_calls", []):
                if call.get("id"):
                    names[call["id"]] = call["name"]
            turns.append({"from": "gpt", "value": _gpt_value(m)})
        elif role == "tool":
            turns.append({"from": "tool", "value": _tool_value(m, names)})
        else:
            turns.append({"from": "human", "value": m["content"]})
    if not any(t["from"] == "human" for t in turns):
        return None, "no user turn"
    return turns, None


def content_hash(turns: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(turns, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def in_holdout(digest: str, fraction: float) -> bool:
    """Deterministic: the first 32 bits of the content hash, as a fraction of 2**32, against `fraction`."""
    return int(digest[:8], 16) / 2**32 < fraction


def export_dataset(
    store: TraceStore,
    out_dir: str | Path,
    *,
    agent: AgentKey | None = None,
    model: str | None = None,
    since: float | None = None,
    until: float | None = None,
    success: bool | None = True,
    holdout_fraction: float = 0.1,
    record: bool = True,
    redactor: Redactor | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write train.jsonl, holdout.jsonl and manifest.json under `out_dir`; record watermarks per agent."""
    if not 0.0 <= holdout_fraction < 1.0:
        from cep_core.errors import InputError

        raise InputError(f"--holdout: the holdout fraction must be in [0, 1), got {holdout_fraction}")
    redactor = redactor or Redactor()
    out = private_dir(out_dir)
    where = TraceFilter(
        agent_type=agent.agent_type if agent else None,
        agent_name=agent.agent_name if agent else None,
        model=model,
        success=success,
        since=since,
        until=until,
    )
    clauses, params = where.where("traces")
    cond = " AND ".join(clauses) if clauses else "1"
    total = store.conn.execute(f"SELECT count(*) FROM traces WHERE {cond}", params).fetchone()[0]
    result = ExportResult(out / "train.jsonl", out / "holdout.jsonl", out / "manifest.json")
    seen: set[bytes] = set()
    skipped: Counter[str] = Counter()
    done = 0
    with atomic_file(result.train_path) as train_f, atomic_file(result.holdout_path) as hold_f:
        after = ""
        while True:
            rows = store.conn.execute(
                f"SELECT * FROM traces WHERE {cond} AND id > ? ORDER BY id LIMIT ?", [*params, after, CHUNK]
            ).fetchall()
            if not rows:
                break
            after = rows[-1]["id"]
            for db_row in rows:
                done += 1
                row = TraceRow.from_db(db_row)
                key = AgentKey(row.agent_type, row.agent_name)
                result.last_ids[key] = max(result.last_ids.get(key, ""), row.id)
                turns, reason = to_conversations(row)
                if turns is None:
                    skipped[reason or "unknown"] += 1
                    continue
                turns, n = redactor.data(turns)  # again, in case patterns were added after capture
                result.redactions += n
                digest = content_hash(turns)
                key = bytes.fromhex(digest[:32])  # 128 bits is plenty to spot duplicates, at half the memory
                if key in seen:
                    result.duplicates += 1
                    continue
                seen.add(key)
                record_line = {
                    "id": row.id,
                    "conversations": turns,
                    "agent": row.agent,
                    "model": row.model,
                    "source": "trace",
                    "content_hash": digest,
                }
                line = strict_json(record_line) + "\n"
                if in_holdout(digest, holdout_fraction):
                    hold_f.write(line)
                    result.holdout += 1
                else:
                    train_f.write(line)
                    result.train += 1
            if on_progress:
                on_progress(done, total)
    result.skipped = dict(skipped)
    manifest = result.to_dict() | {
        "created_at": time.time(),
        "store": str(store.path),
        "holdout_fraction": holdout_fraction,
        "filters": {
            "agent": str(agent) if agent else None,
            "model": model,
            "since": since,
            "until": until,
            "success": success,
        },
        "format": "hermes-conversations",
        "tool_call_format": "target",
    }
    write_json(result.manifest_path, manifest)
    if record:
        for key, last_id in result.last_ids.items():
            record_watermark(store, key, last_id, result.examples, str(result.train_path))
    return result
