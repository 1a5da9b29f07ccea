"""SQLite connections and numbered migrations, shared by the state store and the trace store.

Every connection gets the same settings (WAL, a busy timeout, synchronous=NORMAL) so that many
processes can write at once. Migrations are plain decorated functions recorded in a table, the way
Simon Willison's `llm` does it, and are applied under an immediate transaction so that processes
starting together never apply one twice.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from cep_core.store.private import open_private

BUSY_TIMEOUT_MS = 10_000
MigrationFn = Callable[[sqlite_utils.Database], None]


def connect(path: str | Path, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open `path` with the project's settings. Creates the file with mode 0600 when it is new."""
    path = Path(path)
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
    else:
        if not path.exists():  # SQLite gives the -wal and -shm files the database file's mode
            os.close(open_private(path, os.O_WRONLY | os.O_CREAT))
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
        )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        _ensure_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


def _ensure_wal(conn: sqlite3.Connection) -> None:
    """Switch a new database to WAL. The mode is stored in the file, so this writes only once; switching needs
    an exclusive lock that SQLite does not wait for, so processes opening a new file together retry here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Migrations:
    """An ordered set of schema migrations for one database, recorded in `_migrations`."""

    def __init__(self, name: str):
        self.name = name
        self._steps: list[tuple[str, MigrationFn]] = []

    def __call__(self, fn: MigrationFn) -> MigrationFn:
        self._steps.append((fn.__name__, fn))
        return fn

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._steps]

    def apply(self, db: sqlite_utils.Database) -> list[str]:
        """Apply the migrations this database lacks; return their names."""
        applied_now: list[str] = []
        conn = db.conn
        if _applied(conn, self.name) >= set(self.names):
            return applied_now
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations "
                "(migration_set TEXT, name TEXT, applied_at REAL, PRIMARY KEY (migration_set, name))"
            )
            done = _applied(conn, self.name)
            for name, fn in self._steps:
                if name in done:
                    continue
                fn(db)
                conn.execute("INSERT INTO _migrations VALUES (?, ?, ?)", (self.name, name, time.time()))
                applied_now.append(name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return applied_now


def _applied(conn: sqlite3.Connection, migration_set: str) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM _migrations WHERE migration_set = ?", (migration_set,))
    except sqlite3.OperationalError:  # no table yet
        return set()
    return {row[0] for row in rows}
