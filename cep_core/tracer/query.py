"""Reading the trace store: keyset pages (newest first), filtered pages, full-text search, statistics.

The CLI and the console call these; nothing here prints. Pages return light summaries (previews, not
whole prompts) so a screen can list a million traces without reading them all; `get` returns one whole trace.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from cep_core.tracer import thresholds
from cep_core.tracer.ids import id_floor
from cep_core.tracer.store import TraceRow, TraceStore

PREVIEW_CHARS = 160
DEFAULT_LIMIT = 50
_SUMMARY_COLUMNS = (
    "t.id, t.ts, t.agent_type, t.agent_name, t.model, t.success, t.cost, t.execution_time, t.redactions, "
    f"substr(t.user_query, 1, {PREVIEW_CHARS}) AS query_preview, "
    f"substr(t.response, 1, {PREVIEW_CHARS}) AS response_preview, substr(t.error, 1, {PREVIEW_CHARS}) AS error"
)


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Conditions on a page. `since`/`until` are unix seconds and become id bounds (ids sort by time)."""

    agent_type: str | None = None
    agent_name: str | None = None
    model: str | None = None
    success: bool | None = None
    since: float | None = None
    until: float | None = None

    def where(self, alias: str = "t") -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("agent_type", self.agent_type),
            ("agent_name", self.agent_name),
            ("model", self.model),
        ):
            if value is not None:
                clauses.append(f"{alias}.{column} = ?")
                params.append(value)
        if self.success is not None:
            clauses.append(f"{alias}.success = ?")
            params.append(int(self.success))
        if self.since is not None:
            clauses.append(f"{alias}.id >= ?")
            params.append(id_floor(self.since))
        if self.until is not None:
            clauses.append(f"{alias}.id < ?")
            params.append(id_floor(self.until))
        return clauses, params


@dataclass(slots=True)
class TraceSummary:
    id: str
    ts: float
    agent: str
    model: str
    success: bool
    cost: float | None
    execution_time: float | None
    redactions: int
    query_preview: str
    response_preview: str
    error: str | None

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> TraceSummary:
        return cls(
            id=row["id"],
            ts=row["ts"],
            agent=f"{row['agent_type']}/{row['agent_name']}",
            model=row["model"],
            success=bool(row["success"]),
            cost=row["cost"],
            execution_time=row["execution_time"],
            redactions=row["redactions"],
            query_preview=row["query_preview"] or "",
            response_preview=row["response_preview"] or "",
            error=row["error"],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Page:
    rows: list[TraceSummary]
    next_before_id: str | None  # pass as before_id for the next (older) page; None at the end

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "next_before_id": self.next_before_id}


def page(
    store: TraceStore,
    *,
    before_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
    where: TraceFilter | None = None,
) -> Page:
    """The newest traces older than `before_id` that pass `where`, newest first."""
    clauses, params = (where or TraceFilter()).where()
    if before_id is not None:
        clauses.append("t.id < ?")
        params.append(before_id)
    sql = f"SELECT {_SUMMARY_COLUMNS} FROM traces t"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY t.id DESC LIMIT ?"
    rows = [TraceSummary.from_db(r) for r in store.conn.execute(sql, [*params, limit + 1])]
    return _page(rows, limit)


def fts_query(text: str) -> str:
    """A user's words as a safe FTS5 query: every word must appear (each quoted, so no syntax errors)."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


FILTER_FIRST_MAX = 5_000  # a filter passing fewer rows is walked, checking each against the index


def search(
    store: TraceStore,
    text: str,
    *,
    before_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
    where: TraceFilter | None = None,
    raw: bool = False,
) -> Page:
    """Traces whose user query, response or error hold every word of `text`, newest stored first.

    With `raw=True`, `text` is passed to FTS5 as a query (phrases, OR, NEAR, prefix*). With a selective filter
    (few rows pass it) the rows that pass are checked against the index one by one, instead of walking every
    match of a word that may be in most traces.
    """
    match = text if raw else fts_query(text)
    if not match:
        return Page([], None)
    clauses, params = (where or TraceFilter()).where()
    filter_first = False
    if clauses:
        cond = " AND ".join(clauses)
        passing = store.conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM traces t WHERE {cond} LIMIT ?)",
            [*params, FILTER_FIRST_MAX + 1],
        ).fetchone()[0]
        filter_first = passing <= FILTER_FIRST_MAX
    if before_id is not None:
        found = store.conn.execute("SELECT rowid FROM traces WHERE id = ?", (before_id,)).fetchone()
        if found is None:
            return Page([], None)
        clauses.append("t.rowid < ?")
        params.append(found[0])
    if filter_first:
        sql = (
            f"SELECT {_SUMMARY_COLUMNS} FROM traces t WHERE {' AND '.join(clauses)} AND EXISTS "
            "(SELECT 1 FROM traces_fts f WHERE traces_fts MATCH ? AND f.rowid = t.rowid) "
            "ORDER BY +t.rowid DESC LIMIT ?"
        )  # "+": sort the few rows, never walk the table
        args = [*params, match, limit + 1]
    else:
        sql = (
            f"SELECT {_SUMMARY_COLUMNS} FROM traces_fts f JOIN traces t ON t.rowid = f.rowid "
            "WHERE traces_fts MATCH ?"
        )
        sql += "".join(f" AND {c}" for c in clauses)
        sql += " ORDER BY f.rowid DESC LIMIT ?"
        args = [match, *params, limit + 1]
    try:
        rows = [TraceSummary.from_db(r) for r in store.conn.execute(sql, args)]
    except sqlite3.Error as exc:
        # A raw query is the user's FTS5 syntax: every error SQLite gives for it ("no such column: key" for
        # `-key`, "unknown special query" for `*`, "unterminated string" for `"`) is a bad query, not a crash.
        if raw:
            from cep_core.errors import InputError

            raise InputError(
                f'bad full-text query {text!r}: {exc}. FTS5 syntax: words, "a phrase", OR, NOT, '
                "NEAR(a b), prefix*; column filters are user_query:, response:, error:"
            ) from None
        raise
    return _page(rows, limit)


def _page(rows: list[TraceSummary], limit: int) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)


def get(store: TraceStore, trace_id: str) -> TraceRow | None:
    """One whole trace, by id or by a unique id prefix (at least 8 characters)."""
    row = store.conn.execute("SELECT * FROM traces WHERE id = ?", (trace_id.upper(),)).fetchone()
    if row is None and len(trace_id) >= 8:
        prefix = trace_id.upper()
        found = store.conn.execute(
            "SELECT * FROM traces WHERE id >= ? AND id < ? LIMIT 2", (prefix, prefix + "\x7f")
        ).fetchall()
        row = found[0] if len(found) == 1 else None
    return TraceRow.from_db(row) if row is not None else None


@dataclass(slots=True)
class GroupStats:
    agent: str
    model: str
    calls: int
    successes: int
    success_rate: float
    total_cost: float
    mean_cost: float | None
    mean_time: float | None
    p95_time: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_stats(store: TraceStore, where: TraceFilter | None = None) -> list[GroupStats]:
    """Per (agent, model): calls, success rate, total and mean cost, mean and 95th-percentile time.

    Both queries run on idx_traces_stats: the groups in index order, and each group's p95 as one index seek
    (its times are stored sorted within the group).
    """
    clauses, params = (where or TraceFilter()).where()
    cond = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = (
        f"SELECT t.agent_type, t.agent_name, t.model, count(*), sum(t.success), total(t.cost), avg(t.cost), "
        f"avg(t.execution_time), count(t.execution_time) FROM traces t{cond} "
        "GROUP BY t.agent_type, t.agent_name, t.model ORDER BY t.agent_type, t.agent_name, t.model"
    )
    extra = "".join(f" AND {c}" for c in clauses)
    p95_sql = (
        "SELECT t.execution_time FROM traces t WHERE t.agent_type = ? AND t.agent_name = ? AND t.model = ? "
        f"AND t.execution_time IS NOT NULL{extra} ORDER BY t.execution_time LIMIT 1 OFFSET ?"
    )
    out = []
    for (
        agent_type,
        agent_name,
        model,
        calls,
        successes,
        total_cost,
        mean_cost,
        mean_time,
        timed,
    ) in store.conn.execute(sql, params).fetchall():
        p95 = None
        if timed:
            # Nearest rank: the ceil(0.95 n)-th smallest time, ceil done in integers.
            rank = (95 * timed + 99) // 100
            p95 = store.conn.execute(p95_sql, [agent_type, agent_name, model, *params, rank - 1]).fetchone()[
                0
            ]
        out.append(
            GroupStats(
                agent=f"{agent_type}/{agent_name}",
                model=model,
                calls=calls,
                successes=successes or 0,
                success_rate=(successes or 0) / calls,
                total_cost=total_cost,
                mean_cost=mean_cost,
                mean_time=mean_time,
                p95_time=p95,
            )
        )
    return out


def stats(
    store: TraceStore, *, threshold: int = thresholds.DEFAULT_THRESHOLD, where: TraceFilter | None = None
) -> dict[str, Any]:
    """Everything `cep traces stats` shows: per-group figures and per-agent progress to the threshold."""
    return {
        "groups": [g.to_dict() for g in group_stats(store, where)],
        "agents": [p.to_dict() for p in thresholds.progress(store, threshold)],
        "threshold": threshold,
        "total": store.count(),
    }
