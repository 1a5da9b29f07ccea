"""The trace store: its own SQLite database (CEP_TRACES_DB or CEP_HOME/traces.db).

One row per captured call in `traces`, keyed by a time-ordered id; an external-content FTS5 table over the
user prompt, the response and the error, kept in step by triggers; indexes for browsing by time, agent,
model and failure. Writes are single autocommit INSERTs (or one transaction per batch) on a WAL database
with a busy timeout, so many processes can capture at once without "database is locked" or a lost row.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from cep_core.store.db import Migrations, connect
from cep_core.store.state import traces_db_path
from cep_core.tracer.forks import hold_across_fork

TRACE_MIGRATIONS = Migrations("traces")

TRACE_COLUMNS = (
    "id",
    "ts",
    "agent_type",
    "agent_name",
    "model",
    "system_prompt",
    "user_query",
    "response",
    "messages",
    "tools",
    "success",
    "cost",
    "execution_time",
    "error",
    "metadata",
    "redactions",
)
# Retries on top of SQLite's own busy timeout, for the rare SQLITE_BUSY that skips the busy handler
# (a journal-mode change racing another process's first open).
OPEN_ATTEMPTS = 20


# The search index over the traces. `content=[traces]` is the spelling sqlite-utils and Datasette look for when
# they find a table's full-text index (`sqlite-utils search traces.db traces WORD`, Datasette's search box);
# SQLite reads `content='traces'` the same, but those tools then say the table has no full-text search.
FTS_TABLE_SQL = """
        CREATE VIRTUAL TABLE traces_fts USING fts5(
            user_query, response, error, content=[traces], content_rowid=[rowid])"""


@TRACE_MIGRATIONS
def m001_traces(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE traces (
            id TEXT NOT NULL UNIQUE,           -- time-ordered (ULID-like); sorts by capture time
            ts REAL NOT NULL,                  -- unix seconds
            agent_type TEXT NOT NULL,
            agent_name TEXT NOT NULL,
            model TEXT NOT NULL,
            system_prompt TEXT NOT NULL DEFAULT '',
            user_query TEXT NOT NULL DEFAULT '',
            response TEXT NOT NULL DEFAULT '',
            messages TEXT NOT NULL DEFAULT '[]',  -- the whole conversation, normalised (JSON)
            tools TEXT NOT NULL DEFAULT '[]',     -- tool signatures offered to the model (JSON)
            success INTEGER NOT NULL,
            cost REAL,
            execution_time REAL,
            error TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            redactions INTEGER NOT NULL DEFAULT 0
        )""")
    db.execute("CREATE INDEX idx_traces_agent ON traces (agent_type, agent_name, id)")
    db.execute("CREATE INDEX idx_traces_agent_success ON traces (agent_type, agent_name, success, id)")
    db.execute("CREATE INDEX idx_traces_model ON traces (model, id)")
    db.execute("CREATE INDEX idx_traces_success ON traces (success, id)")
    db.execute(FTS_TABLE_SQL)
    db.execute("""
        CREATE TRIGGER traces_ai AFTER INSERT ON traces BEGIN
            INSERT INTO traces_fts (rowid, user_query, response, error)
            VALUES (new.rowid, new.user_query, new.response, new.error);
        END""")
    db.execute("""
        CREATE TRIGGER traces_ad AFTER DELETE ON traces BEGIN
            INSERT INTO traces_fts (traces_fts, rowid, user_query, response, error)
            VALUES ('delete', old.rowid, old.user_query, old.response, old.error);
        END""")
    db.execute("""
        CREATE TRIGGER traces_au AFTER UPDATE ON traces BEGIN
            INSERT INTO traces_fts (traces_fts, rowid, user_query, response, error)
            VALUES ('delete', old.rowid, old.user_query, old.response, old.error);
            INSERT INTO traces_fts (rowid, user_query, response, error)
            VALUES (new.rowid, new.user_query, new.response, new.error);
        END""")


@TRACE_MIGRATIONS
def m002_exports_and_triggers(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE export_watermarks (
            agent_type TEXT NOT NULL,
            agent_name TEXT NOT NULL,
            last_id TEXT NOT NULL,        -- the newest trace id included in the last export
            exported_at REAL NOT NULL,
            examples INTEGER NOT NULL,
            path TEXT,
            PRIMARY KEY (agent_type, agent_name)
        )""")
    db.execute("""
        CREATE TABLE retrain_triggers (
            id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            agent_type TEXT NOT NULL,
            agent_name TEXT NOT NULL,
            examples INTEGER NOT NULL,
            dataset TEXT NOT NULL,
            config TEXT NOT NULL,
            status TEXT NOT NULL,         -- exported (command printed) | launched | launch_failed
            launch_ref TEXT               -- what the launcher returned (a job id), when one ran
        )""")


@TRACE_MIGRATIONS
def m003_stats_index(db: sqlite_utils.Database) -> None:
    # Covers `cep traces stats`: groups read in index order (no sort, no table scan), and each group's times
    # come out already ordered for the 95th percentile.
    db.execute(
        "CREATE INDEX idx_traces_stats ON traces (agent_type, agent_name, model, execution_time, success, cost)"
    )


@TRACE_MIGRATIONS
def m004_fts_found_by_sqlite_utils(db: sqlite_utils.Database) -> None:
    """Stores made before FTS_TABLE_SQL declared `content='traces'`: rebuild the index under the spelling
    sqlite-utils and Datasette recognise (the triggers name the table, so they keep working)."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE name = 'traces_fts'").fetchone()
    if row is None or "content=[traces]" in row[0]:
        return
    db.execute("DROP TABLE traces_fts")
    db.execute(FTS_TABLE_SQL)
    db.execute("INSERT INTO traces_fts (traces_fts) VALUES ('rebuild')")


@dataclass(slots=True)
class TraceRow:
    """One stored trace, as written (text fields already redacted)."""

    id: str
    ts: float
    agent_type: str
    agent_name: str
    model: str
    system_prompt: str = ""
    user_query: str = ""
    response: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    success: bool = True
    cost: float | None = None
    execution_time: float | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    redactions: int = 0

    @property
    def agent(self) -> str:
        return f"{self.agent_type}/{self.agent_name}"

    def as_params(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.ts,
            self.agent_type,
            self.agent_name,
            self.model,
            self.system_prompt,
            self.user_query,
            self.response,
            _dumps(self.messages),
            _dumps(self.tools),
            int(bool(self.success)),
            self.cost,
            self.execution_time,
            self.error,
            _dumps(self.metadata),
            self.redactions,
        )

    @classmethod
    def from_db(cls, row: sqlite3.Row | dict[str, Any]) -> TraceRow:
        d = dict(row)
        return cls(
            id=d["id"],
            ts=d["ts"],
            agent_type=d["agent_type"],
            agent_name=d["agent_name"],
            model=d["model"],
            system_prompt=d["system_prompt"],
            user_query=d["user_query"],
            response=d["response"],
            messages=_loads(d["messages"], []),
            tools=_loads(d["tools"], []),
            success=bool(d["success"]),
            cost=d["cost"],
            execution_time=d["execution_time"],
            error=d["error"],
            metadata=_loads(d["metadata"], {}),
            redactions=d["redactions"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TRACE_COLUMNS} | {"agent": self.agent}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _loads(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


_INSERT = f"INSERT INTO traces ({', '.join(TRACE_COLUMNS)}) VALUES ({', '.join('?' * len(TRACE_COLUMNS))})"


class TraceStore:
    """The trace database: open (and migrate) once, then insert and query."""

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False):
        self.path = Path(path) if path is not None else traces_db_path()
        self.readonly = readonly
        self.db = _open(self.path, readonly)
        self.conn: sqlite3.Connection = self.db.conn
        self.conn.row_factory = sqlite3.Row

    def insert(self, row: TraceRow) -> None:
        """Store one trace in its own (autocommit) transaction."""
        self.conn.execute(_INSERT, row.as_params())

    def insert_many(self, rows: list[TraceRow]) -> None:
        """Store several traces in one transaction: far cheaper per row than one at a time."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, [r.as_params() for r in rows])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM traces").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class WalCheckpointer:
    """Checkpoints the WAL from a background thread, so no capture pays for it.

    SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, which puts a few
    milliseconds on one capture in a few hundred. With this running, the capturing connection's automatic
    checkpoint is pushed far out (a backstop if this thread ever stops) and PASSIVE checkpoints run here,
    at most once a second and only after writes; PASSIVE never waits for, or blocks, another connection.
    """

    INTERVAL_S = 1.0
    BACKSTOP_PAGES = 20_000  # ~80 MB of WAL before a capture would checkpoint itself

    def __init__(self, store: TraceStore):
        self.path = store.path
        store.conn.execute(f"PRAGMA wal_autocheckpoint = {self.BACKSTOP_PAGES}")
        self._dirty = threading.Event()
        self._stop = threading.Event()
        # Held around every SQLite call this thread makes; taken before a fork so that no fork happens while
        # the thread is inside SQLite (holding SQLite's process-wide mutexes, which the child would inherit
        # locked and deadlock on).
        self.sqlite_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="cep-trace-checkpoint", daemon=True)
        _LIVE_CHECKPOINTERS.add(self)
        self._thread.start()

    def wrote(self) -> None:
        self._dirty.set()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        self._dirty.set()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        conn = None
        try:
            with self.sqlite_lock:
                conn = sqlite3.connect(self.path, timeout=1.0, check_same_thread=False, isolation_level=None)
            while not self._stop.is_set():
                self._dirty.wait()
                if self._stop.wait(self.INTERVAL_S):
                    break
                self._dirty.clear()
                try:
                    with self.sqlite_lock:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or gone: the next round (or the backstop) catches up
                    logging.getLogger("cep_core.tracer").debug("trace store checkpoint skipped: %s", exc)
        except sqlite3.Error as exc:
            logging.getLogger("cep_core.tracer").debug("trace store checkpointer stopped: %s", exc)
        finally:
            if conn is not None:
                with self.sqlite_lock:
                    conn.close()


_LIVE_CHECKPOINTERS: weakref.WeakSet[WalCheckpointer] = weakref.WeakSet()
# Their threads do not exist in the child: forget them there.
hold_across_fork(
    lambda: [checkpointer.sqlite_lock for checkpointer in list(_LIVE_CHECKPOINTERS)],
    in_child=_LIVE_CHECKPOINTERS.clear,
)


def _open(path: Path, readonly: bool) -> sqlite_utils.Database:
    if readonly:
        return connect(path, readonly=True)
    delay = 0.01
    for attempt in range(OPEN_ATTEMPTS):
        db = None
        try:
            db = connect(path)
            TRACE_MIGRATIONS.apply(db)
            return db
        except sqlite3.OperationalError as exc:
            if db is not None:
                db.conn.close()
            if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    raise AssertionError("unreachable")
