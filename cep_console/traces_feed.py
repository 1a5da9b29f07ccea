"""The traces side of the console: open the store if it exists, page it by keyset, search, stats, export.

A missing store is a state to show (with how to create one), never an error, and is never created here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.ages import format_age, parse_age
from cep_core.errors import InputError

PAGE_SIZE = 50


@dataclass(slots=True)
class TraceQuery:
    """What the traces table shows: filters, an optional full-text search, and the keyset position."""

    agent: str | None = None  # "type/name"
    model: str | None = None
    success: bool | None = None
    since_s: float | None = None  # newer than this many seconds ago
    search: str = ""
    before_ids: list[str | None] = field(default_factory=lambda: [None])  # a stack: page k starts before [k]

    @property
    def page_number(self) -> int:
        return len(self.before_ids)

    def describe(self) -> str:
        parts = []
        if self.agent:
            parts.append(f"agent={self.agent}")
        if self.model:
            parts.append(f"model={self.model}")
        if self.success is not None:
            parts.append(f"success={'yes' if self.success else 'no'}")
        if self.since_s:
            parts.append(f"since={format_age(self.since_s)}")
        if self.search:
            parts.append(f"search={self.search!r}")
        return " ".join(parts) or "all traces"


def parse_filter(text: str) -> TraceQuery:
    """`agent=planner/main model=gpt-4o success=no since=2h` -> a TraceQuery; bad words raise InputError."""
    q = TraceQuery()
    for word in text.split():
        key, sep, value = word.partition("=")
        if not sep or not value:
            raise InputError(
                f"filter {word!r}: write key=value (agent, model, success, since)", field="filter"
            )
        key = key.lower()
        if key == "agent":
            q.agent = value
        elif key == "model":
            q.model = value
        elif key == "success":
            if value.lower() not in ("yes", "no", "true", "false", "1", "0"):
                raise InputError(f"success={value}: use yes or no", field="filter")
            q.success = value.lower() in ("yes", "true", "1")
        elif key == "since":
            age = parse_age(value)
            if not age:
                raise InputError(f"since={value}: use a duration such as 30m, 2h or 7d", field="filter")
            q.since_s = age
        else:
            raise InputError(f"unknown filter {key!r} (use agent, model, success, since)", field="filter")
    return q


@dataclass(slots=True)
class TracesPage:
    rows: list[Any]  # cep_core.tracer.query.TraceSummary
    has_next: bool
    next_before_id: str | None


@dataclass(slots=True)
class TracesOverview:
    available: bool
    message: str = ""  # why not, and what to do
    total: int = 0
    groups: list[Any] = field(default_factory=list)  # GroupStats
    agents: list[Any] = field(default_factory=list)  # AgentProgress
    threshold: int = 100
    newly_ready: list[Any] = field(default_factory=list)  # agents that crossed the threshold since last poll


class TracesFeed:
    def __init__(self, path: Path, home: Path | None = None, threshold: int | None = None):
        self.path = Path(path)
        self.home = home
        self._store: Any = None
        self.threshold = threshold
        self._ready: set[str] | None = None

    def store(self) -> Any:
        """The open store, or None when there is no store file yet."""
        if self._store is None:
            if not self.path.is_file():
                return None
            from cep_core.tracer.store import TraceStore

            self._store = TraceStore(self.path)
        return self._store

    def missing_message(self) -> str:
        return (
            f"No trace store at {self.path}. Capture calls from your workflow with "
            "`from cep_core.tracer import WorkflowTracer; WorkflowTracer().capture_call(...)` "
            "or start the console with --traces DB."
        )

    def overview(self) -> TracesOverview:
        from cep_core.tracer import thresholds
        from cep_core.tracer.query import group_stats

        try:
            store = self.store()
        except Exception as exc:  # noqa: BLE001 — a corrupt or locked file is shown, not raised
            return TracesOverview(False, f"cannot open the trace store {self.path}: {exc}")
        if store is None:
            return TracesOverview(False, self.missing_message())
        threshold = self.threshold or thresholds.DEFAULT_THRESHOLD
        return TracesOverview(
            True, "", store.count(), group_stats(store), thresholds.progress(store, threshold), threshold
        )

    def newly_ready(self, overview: TracesOverview) -> list[Any]:
        """Agents that reached their threshold since the last call (none on the first call)."""
        ready = {str(a.key): a for a in overview.agents if a.ready}
        if self._ready is None:
            self._ready = set(ready)
            return []
        new = [a for k, a in ready.items() if k not in self._ready]
        self._ready = set(ready)
        return new

    def _where(self, q: TraceQuery) -> Any:
        from cep_core.tracer.query import TraceFilter
        from cep_core.tracer.thresholds import parse_agent

        agent_type = agent_name = None
        if q.agent:
            key = parse_agent(q.agent)
            agent_type, agent_name = key.agent_type, key.agent_name
        since = time.time() - q.since_s if q.since_s else None
        return TraceFilter(
            agent_type=agent_type, agent_name=agent_name, model=q.model, success=q.success, since=since
        )

    def page(self, q: TraceQuery, limit: int = PAGE_SIZE) -> TracesPage:
        from cep_core.tracer import query

        store = self.store()
        if store is None:
            return TracesPage([], False, None)
        before = q.before_ids[-1]
        if q.search:
            pg = query.search(store, q.search, before_id=before, limit=limit, where=self._where(q))
        else:
            pg = query.page(store, before_id=before, limit=limit, where=self._where(q))
        return TracesPage(pg.rows, pg.next_before_id is not None, pg.next_before_id)

    def get(self, trace_id: str) -> Any:
        from cep_core.tracer import query

        store = self.store()
        return query.get(store, trace_id) if store is not None else None

    def export(self, agent: str | None) -> Any:
        """Export successful traces (of one agent, or all) as Hermes JSONL; returns the ExportResult."""
        from cep_core.tracer.export import default_export_dir, export_dataset
        from cep_core.tracer.thresholds import resolve_agent

        store = self.store()
        if store is None:
            raise InputError(self.missing_message())
        key = resolve_agent(store, agent) if agent else None
        out = default_export_dir(key)
        if self.home is not None:
            out = self.home / "datasets" / out.name
        return export_dataset(store, out, agent=key)

    def retrain(self, agent: str, launch: Any) -> Any:
        """Export the agent's data, write its run config and launch it through `launch(config) -> job id`."""
        from cep_core.tracer import thresholds
        from cep_core.tracer.ids import new_id
        from cep_core.tracer.retrain import prepare_retrain

        store = self.store()
        if store is None:
            raise InputError(self.missing_message())
        key = thresholds.resolve_agent(store, agent)
        out = None
        if self.home is not None:
            out = self.home / "retrain" / f"{key.agent_type}-{key.agent_name}-{new_id()}".replace("/", "-")
        return prepare_retrain(
            store, key, out_dir=out, threshold=self.threshold or thresholds.DEFAULT_THRESHOLD, launch=launch
        )
