"""The console never dies on what it reads: hostile progress lines in a run's files, a cep.db that is not
SQLite, and the demo home's quit flow (hardening, issue #14). Real jobs, real files, the real App under Pilot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import HEALTHY, make_options, start_step_run, wait_for, wait_job
from screen_text import screen_text

from cep_console.app import CepConsole

pytestmark = pytest.mark.anyio

# A progress line each; every one crashed the console (exit 1) or put a wrong type on screen before the reader
# checked types. 1e400 is what a JSON reader makes an infinity of.
HOSTILE_STEP_LINES = {
    "loss-inf": '{"ts": 1, "event": "step", "step": 2, "loss": 1e400}',
    "loss-nan": '{"ts": 1, "event": "step", "step": 2, "loss": NaN}',
    "loss-text": '{"ts": 1, "event": "step", "step": 2, "loss": "low"}',
    "total-text": '{"ts": 1, "event": "step", "step": 2, "total_steps": "80", "loss": 0.5}',
    "total-zero": '{"ts": 1, "event": "step", "step": 2, "total_steps": 0}',
    "step-text": '{"ts": 1, "event": "step", "step": "2", "total_steps": 3}',
    "step-negative": '{"ts": 1, "event": "step", "step": -5, "total_steps": 3}',
    "step-float": '{"ts": 1, "event": "checkpoint", "step": 2.5, "path": 7}',
    "eta-inf": '{"ts": 1, "event": "step", "step": 2, "eta_s": -1e400, "tokens_per_s": 1e400}',
    "start-total-text": '{"ts": 1, "event": "start", "total_steps": "eighty", "world_size": "x"}',
    "end-step-bool": '{"ts": 1, "event": "end", "status": 3, "step": true}',
    "ts-text": '{"ts": "yesterday", "event": "step", "step": 2}',
}


@pytest.fixture
def hostile_home(home: Path) -> Path:
    """One finished real run per hostile line, the line appended to its progress.jsonl."""
    for name, line in HOSTILE_STEP_LINES.items():
        job = start_step_run(home, name, steps=3, delay=0.01)
        wait_job(home, job.id)
        with (Path(job.run_dir) / "progress.jsonl").open("a") as handle:
            handle.write(line + "\n")
    return home


async def test_hostile_progress_lines_never_crash_the_runs_screen(hostile_home):
    app = CepConsole(make_options(hostile_home, replay=HEALTHY))
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("2")
        await wait_for(
            pilot,
            lambda: app.runs_state is not None and len(app.runs_state.rows) == len(HOSTILE_STEP_LINES),
            what="every run",
        )
        for _ in HOSTILE_STEP_LINES:  # select each run in turn: its progress bar and loss curve are drawn
            await pilot.press("down")
            await pilot.pause(0.15)
        assert app.is_running and app.return_code is None
        for row in app.runs_state.rows:
            assert row.step is None or (isinstance(row.step, int) and row.step >= 0)
            assert row.total_steps is None or (isinstance(row.total_steps, int) and row.total_steps > 0)
            assert row.loss is None or row.loss == row.loss and abs(row.loss) != float("inf")
        text = screen_text(app)
        assert "loss-inf" in text and "total-text" in text
        assert not re.search(r"(?<![-\w])(inf|nan)\b", text, re.IGNORECASE)  # (run names hold "-inf")


def test_the_job_list_json_stays_valid_on_hostile_lines(hostile_home):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(hostile_home), "jobs", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    jobs = json.loads(out.stdout)  # strict: no Infinity, no NaN
    assert len(jobs) == len(HOSTILE_STEP_LINES)
    by_name = {j["name"]: j for j in jobs}
    assert by_name["loss-inf"]["loss"] == pytest.approx(
        1 / 3
    )  # the bad value dropped, the last good one kept
    assert by_name["total-text"]["total_steps"] == 3


@pytest.fixture(params=["text", "truncated-sqlite"])
def broken_db_home(request, home: Path) -> Path:
    """A home whose cep.db is not a SQLite database: a text file, or a real one cut short (damaged)."""
    if request.param == "text":
        (home / "cep.db").write_text("this is not a database\n")
    else:
        from cep_core.store.state import open_state

        db = open_state(home)
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.conn.close()
        data = (home / "cep.db").read_bytes()
        (home / "cep.db").write_bytes(data[:100] + b"\0" * 50 + data[150:1200])
    return home


async def test_a_cep_db_that_is_not_sqlite_is_explained_and_every_screen_opens(broken_db_home):
    from cep_console.messages import ActionDone

    notes: list[str] = []
    hook = lambda m: notes.append(m.text) if isinstance(m, ActionDone) else None  # noqa: E731
    db = broken_db_home / "cep.db"
    app = CepConsole(make_options(broken_db_home, replay=HEALTHY))
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.runs_state is not None and app.runs_state.error, what="the error")
        assert str(db) in app.runs_state.error and f"mv {db} {db}.broken" in app.runs_state.error
        await pilot.pause(0.6)  # several polls: the problem is notified once, not every second
        assert sum(str(db) in n for n in notes) == 1
        text = screen_text(app)
        assert "not a usable SQLite database" in text
        for key in ("3", "4", "1", "2"):
            await pilot.press(key)
            await pilot.pause(0.3)
        assert app.is_running and app.return_code is None
        await pilot.press("3")
        await wait_for(
            pilot, lambda: "not a usable SQLite database" in screen_text(app), what="Evals says it"
        )


async def test_a_run_of_cep_train_is_listed_stopped_and_resumed_from_the_runs_screen(home, tmp_path):
    """`cep train` in a terminal registers a foreground job: the console lists it, `s` stops it (it
    checkpoints, cep train reports the stop), `r` resumes it as a detached local attempt."""
    import os
    import subprocess
    import sys

    config = tmp_path / "fg.toml"
    config.write_text(
        'name = "fg"\nmodel = "builtin:tiny"\ndevice = "cpu"\n[data]\nsources = ["builtin:sample"]\n'
        "max_rows = 40\n[lora]\nr = 4\nalpha = 8\n[train]\nmax_steps = 400\nbatch_size = 2\n"
        "max_seq_length = 2048\nsave_steps = 2\nlogging_steps = 1\n"
    )
    train = subprocess.Popen(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), "train", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    app = CepConsole(make_options(home, replay=HEALTHY))
    try:
        async with app.run_test(size=(140, 44)) as pilot:
            await pilot.press("2")
            rows = lambda: {r.name: r for r in app.runs_state.rows} if app.runs_state else {}  # noqa: E731
            await wait_for(pilot, lambda: (rows().get("fg") and rows()["fg"].step or 0) >= 3, 120, "steps")
            row = rows()["fg"]
            assert (row.backend, row.state, row.attempt) == ("foreground", "running", 1)
            assert "foreground" in screen_text(app)
            await pilot.press("s", "y")  # stop, and confirm it
            await wait_for(pilot, lambda: rows()["fg"].state == "stopped", 90, "stopped")
            out, _ = train.communicate(timeout=60)
            assert train.returncode == 3 and "stopped at step" in out
            await pilot.press("r")
            await wait_for(pilot, lambda: any(r.attempt == 2 for r in app.runs_state.rows), 30, "attempt 2")
            second = next(r for r in app.runs_state.rows if r.attempt == 2)
            assert second.backend == "local" and second.state == "running"
            from cep_core.jobs.manager import JobManager

            JobManager(home=home).stop(second.job_id, grace_s=60)
    finally:
        if train.poll() is None:
            train.kill()


# ---------------------------------------------------------------- item 14: quitting --demo keeps what was trained
TINY_RUN = (
    'name = "demo-trained"\nmodel = "builtin:tiny"\ndevice = "cpu"\n[data]\nsources = ["builtin:sample"]\n'
    "max_rows = 40\n[lora]\nr = 4\nalpha = 8\n[train]\nmax_steps = 2\nbatch_size = 2\nmax_seq_length = 2048\n"
    "save_steps = 2\n"
)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A run directory with a real trained adapter (cep train of the tiny model, two steps)."""
    import os
    import subprocess
    import sys

    work = tmp_path_factory.mktemp("trained")
    (work / "run.toml").write_text(TINY_RUN)
    subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(work / "home"), "train", str(work / "run.toml")],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    [run] = (work / "home" / "runs").iterdir()
    assert (run / "adapter").is_dir()
    return run


@pytest.fixture
def demo_app(tmp_path, monkeypatch):
    """`cep-console --demo` as main() builds it, its temporary home under tmp_path."""
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return CepConsole(None, request={"demo": True})


async def _quit_with_a_trained_run(app, pilot, trained_run: Path) -> Path:
    import shutil

    await wait_for(pilot, lambda: app.options is not None, what="options")
    await (
        wait_for(  # the demo's seeded evaluation job has ended (a live job keeps the home whatever is chosen)
            pilot,
            lambda: (
                app.runs_state is not None
                and app.runs_state.rows
                and all(r.state not in ("queued", "running") for r in app.runs_state.rows)
            ),
            timeout=60,
            what="the seeded evaluation to end",
        )
    )
    home = app.options.home
    shutil.copytree(trained_run, home / "runs" / trained_run.name)  # trained in this demo home
    await pilot.press("q")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "DemoQuitScreen", what="the quit dialog")
    text = screen_text(app)
    assert str(home)[:40] in text.replace("\n", "") or "demo home" in text
    assert "1 trained adapter(s)" in text and trained_run.name[:20] in text
    return home


@pytest.mark.parametrize(("key", "kept"), [("k", True), ("enter", True), ("d", False)])
async def test_quitting_the_demo_with_a_trained_adapter_asks_and_does_what_was_chosen(
    demo_app, trained_run, key, kept
):
    from cep_console.options import discard_temporary_home

    async with demo_app.run_test(size=(100, 30)) as pilot:
        home = await _quit_with_a_trained_run(demo_app, pilot, trained_run)
        await pilot.press(key)
        await wait_for(pilot, lambda: not demo_app.is_running, what="the app to exit")
    assert demo_app.keep_demo_home is kept
    note = discard_temporary_home(demo_app.options, keep=demo_app.keep_demo_home)
    assert home.is_dir() is kept
    if kept:
        assert f"demo home kept at {home} with 1 trained adapter(s)" in note
        assert f"cep-console --home {home}" in note
        assert (home / "runs" / trained_run.name / "adapter").is_dir()
    else:
        assert note == f"demo home {home} deleted, with 1 trained adapter(s) ({trained_run.name}) in 2 run(s)"


async def test_cancel_goes_back_to_the_console(demo_app, trained_run):
    async with demo_app.run_test(size=(100, 30)) as pilot:
        await _quit_with_a_trained_run(demo_app, pilot, trained_run)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert demo_app.is_running and type(demo_app.screen).__name__ != "DemoQuitScreen"
        assert demo_app.keep_demo_home is None


def test_a_demo_home_with_an_adapter_is_kept_when_nobody_was_asked(tmp_path, monkeypatch, trained_run):
    """The app ended another way (a signal, a crash): an adapter is never deleted unasked."""
    import shutil
    import tempfile

    from cep_console.options import discard_temporary_home, resolve_options

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    options = resolve_options(demo=True)
    shutil.copytree(trained_run, options.home / "runs" / trained_run.name)
    note = discard_temporary_home(options)
    assert options.home.is_dir() and note.startswith(f"demo home kept at {options.home} with 1 trained")
