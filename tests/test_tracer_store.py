"""The trace store: many writers at once, unwritable stores, keyset paging, full-text search, migrations."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cep_core.tracer import TraceCaptureError, WorkflowTracer
from cep_core.tracer import query as q
from cep_core.tracer.store import TRACE_MIGRATIONS, TraceStore

WRITER = textwrap.dedent("""
    import sys, time
    from cep_core.tracer import WorkflowTracer
    path, worker, n, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    tracer = WorkflowTracer(path, strict=True)
    while time.time() < start_at:   # start together, so the first open and the writes really race
        time.sleep(0.001)
    for i in range(n):
        tracer.capture_call("load", f"w{worker}", "gpt-4", system_prompt="s", user_query=f"q {worker} {i}",
                            assistant_response=f"answer {i}", cost=0.001, execution_time=0.1)
    print(tracer.dropped)
""")


def test_eight_processes_capturing_at_once_lose_nothing(tmp_path):
    db = tmp_path / "traces.db"
    import time

    start_at = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(w), "1000", str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(8)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err and out.strip() == "0"
    store = TraceStore(db)
    assert store.count() == 8000
    per_worker = dict(
        store.conn.execute("SELECT agent_name, count(*) FROM traces GROUP BY agent_name").fetchall()
    )
    assert per_worker == {f"w{w}": 1000 for w in range(8)}
    assert store.conn.execute("SELECT count(DISTINCT id) FROM traces").fetchone()[0] == 8000
    assert (
        store.conn.execute("SELECT count(*) FROM traces_fts WHERE traces_fts MATCH 'answer'").fetchone()[0]
        == 8000
    )
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def _unprivileged_prefix() -> list[str]:
    """Root ignores file modes; run the child without the capabilities that let it, so read-only is real."""
    if os.getuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root without setpriv (util-linux): cannot make a file read-only for the child"
        )
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


CAPTURE = textwrap.dedent("""
    import logging, sys
    from cep_core.tracer import WorkflowTracer, TraceCaptureError
    logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(message)s")
    tracer = WorkflowTracer(sys.argv[1], strict=sys.argv[2] == "strict")
    try:
        result = tracer.capture_call("a", "b", "m", user_query="q " * int(sys.argv[3]), assistant_response="r")
        print("returned", result, "dropped", tracer.dropped)
    except TraceCaptureError as exc:
        print("raised", exc)
""")


def _run_capture(
    db: Path, mode: str, size: int = 1, preexec=None, read_only: bool = True
) -> subprocess.CompletedProcess:
    prefix = _unprivileged_prefix() if read_only else []
    return subprocess.run(
        [*prefix, sys.executable, "-c", CAPTURE, str(db), mode, str(size)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=preexec,
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.fixture
def readonly_store(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "traces.db"
    store = TraceStore(db)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.conn.execute("PRAGMA journal_mode = DELETE")
    store.close()
    for extra in (folder / "traces.db-wal", folder / "traces.db-shm"):
        extra.unlink(missing_ok=True)
    os.chmod(db, 0o444)
    os.chmod(folder, 0o555)
    tmp_path.chmod(0o755)
    yield db
    os.chmod(folder, 0o755)
    os.chmod(db, 0o644)


def test_a_read_only_store_is_logged_and_does_not_raise(readonly_store):
    out = _run_capture(readonly_store, "lenient")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "returned None dropped 1"
    assert "LOG WARNING could not store trace for a/b" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_read_only_store_raises_in_strict_mode(readonly_store):
    out = _run_capture(readonly_store, "strict")
    assert out.stdout.startswith("raised could not store trace for a/b"), out.stdout + out.stderr


def test_a_read_only_folder_is_logged_and_does_not_raise(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    tmp_path.chmod(0o755)
    out = _run_capture(folder / "traces.db", "lenient")
    folder.chmod(0o755)
    assert out.stdout.strip() == "returned None dropped 1", out.stderr
    assert "could not store trace" in out.stderr and not (folder / "traces.db").exists()


def test_a_full_disk_is_logged_and_does_not_raise(tmp_path):
    db = tmp_path / "traces.db"
    TraceStore(db).close()
    limit = os.path.getsize(db) + 8192

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = _run_capture(db, "lenient", size=200_000, preexec=small_disk, read_only=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "returned None dropped 1"
    assert "could not store trace" in out.stderr
    assert TraceStore(db).count() == 0  # nothing half-written


def test_failures_are_logged_once_then_counted(tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    tracer = WorkflowTracer(blocked / "traces.db")
    with caplog.at_level(logging.WARNING, logger="cep_core.tracer"):
        results = [tracer.capture_call("a", "b", "m", user_query="q") for _ in range(5)]
    assert results == [None] * 5 and tracer.dropped == 5
    assert len(caplog.records) == 1
    with pytest.raises(TraceCaptureError):
        WorkflowTracer(blocked / "traces.db", strict=True).capture_call("a", "b", "m")


def test_keyset_pages_walk_every_row_once_newest_first(tmp_path):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tracer.capture_many(
        [
            {
                "agent_type": "a",
                "agent_name": f"n{i % 3}",
                "model_used": f"m{i % 2}",
                "user_query": f"q{i}",
                "assistant_response": "r",
                "success": i % 5 != 0,
            }
            for i in range(237)
        ]
    )
    seen, before = [], None
    while True:
        page = q.page(tracer.store, before_id=before, limit=50)
        seen.extend(r.id for r in page.rows)
        before = page.next_before_id
        if before is None:
            break
    assert len(seen) == 237 and seen == sorted(seen, reverse=True) and len(set(seen)) == 237
    failed = q.page(tracer.store, limit=1000, where=q.TraceFilter(success=False)).rows
    assert len(failed) == 48 and not any(r.success for r in failed)
    n1m0 = q.page(
        tracer.store, limit=1000, where=q.TraceFilter(agent_type="a", agent_name="n1", model="m0")
    ).rows
    assert {r.query_preview for r in n1m0} == {f"q{i}" for i in range(237) if i % 3 == 1 and i % 2 == 0}


def test_since_bounds_by_capture_time(tmp_path):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    old = tracer.capture_call("a", "b", "m", user_query="old")
    tracer.store.conn.execute(
        "UPDATE traces SET id = ? WHERE id = ?", ("00" + old[2:], old)
    )  # far in the past
    tracer.capture_call("a", "b", "m", user_query="new")
    import time

    rows = q.page(tracer.store, where=q.TraceFilter(since=time.time() - 60)).rows
    assert [r.query_preview for r in rows] == ["new"]


def test_search_finds_words_in_queries_responses_and_errors(tmp_path):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tracer.capture_call("a", "b", "m", user_query="Book a flight to Auckland", assistant_response="Done")
    tracer.capture_call("a", "b", "m", user_query="Weather?", assistant_response="Rain over Auckland tonight")
    tracer.capture_call("a", "c", "m", user_query="Hi", success=False, error="RateLimitError: quota exceeded")
    tracer.capture_call("a", "b", "m", user_query='Quotes "and" (parens) OR * NEAR', assistant_response="x")
    assert len(q.search(tracer.store, "auckland").rows) == 2
    assert [r.query_preview for r in q.search(tracer.store, "flight Auckland").rows] == [
        "Book a flight to Auckland"
    ]
    assert [r.error for r in q.search(tracer.store, "quota").rows] == ["RateLimitError: quota exceeded"]
    assert (
        len(q.search(tracer.store, '"and" (parens) OR * NEAR').rows) == 1
    )  # user text never breaks FTS syntax
    assert q.search(tracer.store, "auckland", where=q.TraceFilter(agent_name="c")).rows == []
    assert len(q.search(tracer.store, "auck*", raw=True).rows) == 2
    first = q.search(tracer.store, "auckland", limit=1)
    second = q.search(tracer.store, "auckland", limit=1, before_id=first.next_before_id)
    assert (
        first.rows[0].query_preview == "Weather?"
        and second.rows[0].query_preview == "Book a flight to Auckland"
    )


def test_fts_follows_updates_and_deletes(tmp_path):
    store = TraceStore(tmp_path / "t.db")
    tracer = WorkflowTracer(store.path, strict=True)
    tid = tracer.capture_call("a", "b", "m", user_query="alpha")
    store.conn.execute("UPDATE traces SET user_query = 'beta' WHERE id = ?", (tid,))
    assert q.search(store, "alpha").rows == [] and len(q.search(store, "beta").rows) == 1
    store.conn.execute("DELETE FROM traces WHERE id = ?", (tid,))
    assert q.search(store, "beta").rows == []
    store.conn.execute("INSERT INTO traces_fts(traces_fts) VALUES('integrity-check')")


def _sqlite_utils_search(db: Path, word: str) -> subprocess.CompletedProcess:
    """The sqlite-utils command a user would type (`sqlite-utils search traces.db traces WORD`)."""
    tool = Path(sys.executable).with_name("sqlite-utils")
    return subprocess.run(
        [str(tool), "search", str(db), "traces", word, "--csv", "-c", "user_query"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sqlite_utils_finds_the_full_text_index(tmp_path):
    import sqlite_utils

    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tracer.capture_call("a", "b", "m", user_query="Weather in Paris?")
    tracer.capture_call("a", "b", "m", user_query="Weather in Rome?")
    tracer.close()
    assert sqlite_utils.Database(tmp_path / "t.db")["traces"].detect_fts() == "traces_fts"
    found = _sqlite_utils_search(tmp_path / "t.db", "Paris")
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines() == ["user_query", "Weather in Paris?"]


def test_a_store_made_with_the_old_index_spelling_is_migrated(tmp_path):
    """Stores written before m004 declared `content='traces'`, which sqlite-utils does not recognise."""
    path = tmp_path / "t.db"
    tracer = WorkflowTracer(path, strict=True)
    tracer.capture_call("a", "b", "m", user_query="Weather in Paris?")
    tracer.close()
    conn = sqlite3.connect(path)
    conn.executescript("""
        DROP TABLE traces_fts;
        CREATE VIRTUAL TABLE traces_fts USING fts5(
            user_query, response, error, content='traces', content_rowid='rowid');
        INSERT INTO traces_fts (traces_fts) VALUES ('rebuild');
        DELETE FROM _migrations WHERE name = 'm004_fts_found_by_sqlite_utils';
    """)
    conn.close()
    assert "not configured for full-text search" in _sqlite_utils_search(path, "Paris").stderr
    store = TraceStore(path)  # migrates
    assert len(q.search(store, "paris").rows) == 1
    store.conn.execute("INSERT INTO traces_fts(traces_fts) VALUES('integrity-check')")
    store.close()
    assert _sqlite_utils_search(path, "Paris").stdout.splitlines() == ["user_query", "Weather in Paris?"]


def test_migrations_are_recorded_once_and_wal_is_on(tmp_path):
    TraceStore(tmp_path / "t.db").close()
    store = TraceStore(tmp_path / "t.db")
    names = [r[0] for r in store.conn.execute("SELECT name FROM _migrations WHERE migration_set = 'traces'")]
    assert names == TRACE_MIGRATIONS.names
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    plan = " ".join(
        str(r[3])
        for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM traces WHERE agent_type='a' AND agent_name='b' ORDER BY id DESC LIMIT 5"
        )
    )
    assert "idx_traces_agent" in plan and "TEMP B-TREE" not in plan


def test_get_by_unique_prefix(tmp_path):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tid = tracer.capture_call("a", "b", "m", user_query="q")
    assert q.get(tracer.store, tid[:26].lower()).id == tid
    assert q.get(tracer.store, tid[-10:]) is None
    assert q.get(tracer.store, "nope") is None


def test_store_rejects_garbage_files(tmp_path):
    bad = tmp_path / "t.db"
    bad.write_text("this is not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        TraceStore(bad)
    tracer = WorkflowTracer(bad)
    assert tracer.capture_call("a", "b", "m") is None and tracer.dropped == 1


def test_the_wal_is_checkpointed_off_the_capture_path(tmp_path):
    import time

    db = tmp_path / "t.db"
    tracer = WorkflowTracer(db, strict=True)
    tracer.capture_call("a", "b", "m", user_query="first")
    size_before = db.stat().st_size
    for i in range(300):
        tracer.capture_call("a", "b", "m", user_query=f"q{i}", assistant_response="r" * 1000)
    # Captures never checkpoint (the automatic threshold is far away), so the pages sit in the WAL...
    assert tracer.store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] > 1000
    # ...until the background thread copies them into the database file.
    deadline = time.time() + 10
    while db.stat().st_size < size_before + 300_000 and time.time() < deadline:
        time.sleep(0.1)
    assert db.stat().st_size >= size_before + 300_000
    checkpointer = tracer._checkpointer
    assert checkpointer is not None and checkpointer.alive
    tracer.close()
    assert not checkpointer.alive


def test_a_dropped_tracer_stops_its_checkpoint_thread(tmp_path):
    import gc
    import time

    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tracer.capture_call("a", "b", "m", user_query="q")
    checkpointer = tracer._checkpointer
    assert checkpointer is not None and checkpointer.alive
    del tracer
    gc.collect()
    deadline = time.time() + 5
    while checkpointer.alive and time.time() < deadline:
        time.sleep(0.05)
    assert not checkpointer.alive


def test_a_forked_child_captures_through_its_own_connection(tmp_path):
    import multiprocessing

    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tracer.capture_call("a", "parent", "m", user_query="before fork")

    def child() -> None:
        tracer.capture_call("a", "child", "m", user_query="in child")
        tracer.close()

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(60)
    if proc.is_alive():
        proc.kill()
    assert proc.exitcode == 0
    tracer.capture_call("a", "parent", "m", user_query="after fork")
    rows = [r.query_preview for r in reversed(q.page(tracer.store).rows)]
    assert rows == ["before fork", "in child", "after fork"]


@pytest.mark.parametrize(
    "where",
    [
        q.TraceFilter(agent_name="n1"),
        q.TraceFilter(success=False),
        q.TraceFilter(model="m1", agent_name="n2"),
        q.TraceFilter(agent_name="none"),
        q.TraceFilter(),
    ],
)
def test_search_gives_the_same_pages_whichever_side_it_starts_from(tmp_path, monkeypatch, where):
    tracer = WorkflowTracer(tmp_path / "t.db", strict=True)
    tracer.capture_many(
        [
            {
                "agent_type": "a",
                "agent_name": f"n{i % 3}",
                "model_used": f"m{i % 2}",
                "user_query": f"common words {'rare' if i % 7 == 0 else ''} {i}",
                "assistant_response": "r",
                "success": i % 5 != 0,
            }
            for i in range(300)
        ]
    )

    def walk(text: str) -> list[str]:
        seen, before = [], None
        while True:
            page = q.search(tracer.store, text, where=where, limit=7, before_id=before)
            seen.extend(r.id for r in page.rows)
            if page.next_before_id is None:
                return seen
            before = page.next_before_id

    monkeypatch.setattr(q, "FILTER_FIRST_MAX", 0)  # always start from the word's matches
    word_first = {text: walk(text) for text in ("common", "rare", "absent")}
    monkeypatch.setattr(q, "FILTER_FIRST_MAX", 10**9)  # always start from the filter
    filter_first = {text: walk(text) for text in ("common", "rare", "absent")}
    assert word_first == filter_first
    assert word_first["common"] == sorted(word_first["common"], reverse=True)
    assert word_first["absent"] == []


def test_forking_right_after_a_capture_never_deadlocks(tmp_path):
    """The checkpoint thread starts (and opens SQLite) right after the first write; a fork at that moment
    must not hand the child SQLite's mutexes locked."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for i in range(15):
        tracer = WorkflowTracer(tmp_path / f"t{i}.db", strict=True)
        tracer.capture_call("a", "parent", "m", user_query="q")

        def child(tracer=tracer) -> None:
            tracer.capture_call("a", "child", "m", user_query="c")

        procs = [ctx.Process(target=child) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        hung = [p for p in procs if p.is_alive()]
        for p in hung:
            p.kill()  # a deadlocked child must not outlive the test
        assert not hung and [p.exitcode for p in procs] == [0, 0, 0]
        assert tracer.store.count() == 4
        tracer.close()
