"""Per-agent retraining thresholds: new successful examples since the agent's last export.

An agent is (agent_type, agent_name), written "type/name". Each export records a watermark (the newest
trace id it included) so the count of new examples restarts from there.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from cep_core.errors import InputError
from cep_core.tracer.store import TraceStore

DEFAULT_THRESHOLD = 100


@dataclass(frozen=True, slots=True)
class AgentKey:
    agent_type: str
    agent_name: str

    def __str__(self) -> str:
        return f"{self.agent_type}/{self.agent_name}"


@dataclass(slots=True)
class AgentProgress:
    key: AgentKey
    new_examples: int  # successful traces newer than the watermark
    total_successful: int
    threshold: int
    last_export_id: str | None
    last_exported_at: float | None

    @property
    def ready(self) -> bool:
        return self.new_examples >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["agent"] = str(self.key)
        d.pop("key")
        d["ready"] = self.ready
        return d


def parse_agent(text: str) -> AgentKey:
    """'type/name' -> AgentKey. The name may itself hold slashes; the type may not."""
    agent_type, sep, agent_name = text.partition("/")
    if not sep or not agent_type or not agent_name:
        raise InputError(f"agent {text!r} is not written as TYPE/NAME (for example orchestrator/main)")
    return AgentKey(agent_type, agent_name)


def known_agents(store: TraceStore) -> list[AgentKey]:
    rows = store.conn.execute("SELECT DISTINCT agent_type, agent_name FROM traces ORDER BY 1, 2")
    return [AgentKey(r[0], r[1]) for r in rows]


def resolve_agent(store: TraceStore, text: str) -> AgentKey:
    """An agent from 'type/name', or from a bare type or name when exactly one stored agent has it."""
    agents = known_agents(store)
    if "/" in text:
        key = parse_agent(text)
        if key in agents:
            return key
    else:
        matches = [a for a in agents if text in (a.agent_type, a.agent_name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InputError(
                f"agent {text!r} is ambiguous: " + ", ".join(map(str, matches)) + "; write TYPE/NAME",
                path=store.path,
            )
    listing = ", ".join(map(str, agents)) or "none yet"
    raise InputError(f"no traces for agent {text!r} (agents: {listing})", path=store.path)


def progress(store: TraceStore, threshold: int = DEFAULT_THRESHOLD) -> list[AgentProgress]:
    """Every agent's count of new successful examples against `threshold`."""
    marks = {
        AgentKey(r[0], r[1]): (r[2], r[3])
        for r in store.conn.execute(
            "SELECT agent_type, agent_name, last_id, exported_at FROM export_watermarks"
        )
    }
    out = []
    for key in known_agents(store):
        last_id, exported_at = marks.get(key, (None, None))
        total = store.conn.execute(
            "SELECT count(*) FROM traces WHERE agent_type = ? AND agent_name = ? AND success = 1",
            (key.agent_type, key.agent_name),
        ).fetchone()[0]
        if last_id is None:
            new = total
        else:
            new = store.conn.execute(
                "SELECT count(*) FROM traces WHERE agent_type = ? AND agent_name = ? AND success = 1 AND id > ?",
                (key.agent_type, key.agent_name, last_id),
            ).fetchone()[0]
        out.append(AgentProgress(key, new, total, threshold, last_id, exported_at))
    return out


def record_watermark(store: TraceStore, key: AgentKey, last_id: str, examples: int, path: str) -> None:
    """Remember the newest trace an export included; counts of new examples restart after it."""
    store.conn.execute(
        """INSERT INTO export_watermarks (agent_type, agent_name, last_id, exported_at, examples, path)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (agent_type, agent_name) DO UPDATE SET
             last_id = max(last_id, excluded.last_id), exported_at = excluded.exported_at,
             examples = excluded.examples, path = excluded.path""",
        (key.agent_type, key.agent_name, last_id, time.time(), examples, path),
    )
