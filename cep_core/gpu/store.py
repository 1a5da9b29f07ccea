"""Xid events in cep.db (table `gpu_events`, created by state.m001_gpu_events), so history survives restarts.

Re-reading a kernel log (a watcher restart re-reads /dev/kmsg from the start) must not duplicate events,
so each event gets a stable `key` and inserts ignore keys already stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils

from cep_core.gpu.kernel_log import XidEvent
from cep_core.store.state import open_state

TABLE = "gpu_events"


def event_key(ev: XidEvent) -> str:
    """Same line read twice -> same key. Since-boot time when known (stable across re-reads), else wall time."""
    when = f"u{ev.uptime:.6f}" if ev.uptime is not None else (f"t{ev.ts:.3f}" if ev.ts is not None else "t?")
    return "|".join([ev.kind, str(ev.xid), ev.pci or "-", str(ev.pid), when, ev.message[:120]])


def open_store(home: str | Path | None = None) -> sqlite_utils.Database:
    return open_state(home)


def record_events(db: sqlite_utils.Database, events: Iterable[XidEvent]) -> int:
    """Store events not seen before; return how many were new."""
    rows = []
    now = time.time()
    for ev in events:
        row = ev.to_dict()
        row["key"] = event_key(ev)
        row["recorded_at"] = now
        rows.append(row)
    if not rows:
        return 0
    before = db[TABLE].count
    db[TABLE].insert_all(rows, ignore=True, alter=False)
    return db[TABLE].count - before


def recent_events(
    db: sqlite_utils.Database, since_ts: float | None = None, limit: int = 10_000
) -> list[XidEvent]:
    """Stored events, oldest first; events without a wall-clock time are judged by when we recorded them."""
    if since_ts is None:
        where, params = "1", []
    else:
        where, params = "coalesce(ts, recorded_at) >= ?", [since_ts]
    rows = db.query(
        f"select * from {TABLE} where {where} order by coalesce(ts, recorded_at), id limit ?",
        [*params, limit],
    )
    return [XidEvent.from_dict(r) for r in rows]
