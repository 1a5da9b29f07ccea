"""The traces side of the console: open the store if it exists, page it by keyset, search, stats, export.

A missing store is a state to show (with how to create one), never an error, and is never created here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.tracer.filters import FilterTerms
from cep_core.tracer.thresholds import DEFAULT_THRESHOLD

PAGE_SIZE = 50


@dataclass(slots=True)
class TraceQuery:
    """What the traces table shows: filter terms (cep_core's language, as `cep traces list` reads them), an
    optional full-text search, and the keyset position."""

    terms: FilterTerms = field(default_factory=FilterTerms)
    search: str = ""
    before_ids: list[str | None] = field(default_factory=lambda: [None])  # a stack: page k starts before [k]

    @property
    def page_number(self) -> int:
        return len(self.before_ids)

    def describe(self) -> str:
        described = self.terms.describe()
        parts = [] if described == "all traces" else [described]
        if self.search:
            parts.append(f"search={self.search!r}")
        return " ".join(parts) or "all traces"


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
    threshold: int = DEFAULT_THRESHOLD
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
        threshold = self.threshold or DEFAULT_THRESHOLD
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

    def page(self, q: TraceQuery, limit: int = PAGE_SIZE) -> TracesPage:
        from cep_core.tracer import query

        store = self.store()
        if store is None:
            return TracesPage([], False, None)
        before = q.before_ids[-1]
        if q.search:
            pg = query.search(store, q.search, before_id=before, limit=limit, where=q.terms.to_filter(store))
        else:
            pg = query.page(store, before_id=before, limit=limit, where=q.terms.to_filter(store))
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
            store, key, out_dir=out, threshold=self.threshold or DEFAULT_THRESHOLD, launch=launch
        )
