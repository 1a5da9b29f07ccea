"""Snapshots (pytest-textual-snapshot) of every screen at 80x24 and 160x48, from real state made
deterministic: replayed GPU hosts (healthy, no driver = NVML missing, Xid 79), a home with real step-job runs
under fixed ids, real evaluations under fixed ids, a trace store with fixed rows. Feeds are polled by hand
so the histories (sparklines) have a fixed length. Update with `pytest --snapshot-update` after a deliberate
change, and look at the SVGs it writes before committing them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FALLEN, HEALTHY, NO_DRIVER, STEP_JOB, make_options, run_evaluation, wait_for

from cep_console.app import CepConsole
from cep_console.messages import GpuUpdated, RunsUpdated, TracesUpdated

SIZES = [(80, 24), (160, 48)]
SHOWN_HOME = "~/snap-home"  # what the header says the home is: the real one is a fresh pytest folder


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def _fixed_header(monkeypatch):
    """Homes live in pytest's own temporary folders (never a fixed /tmp path another run could share); the
    header, which shows the home, names a fixed one instead so the SVGs compare."""
    from cep_console.app import MODE_TITLES

    monkeypatch.setattr(
        CepConsole, "_subtitle", lambda self: f"{MODE_TITLES.get(self.current_mode, '')} · {SHOWN_HOME}"
    )


def snap_home(root: Path, name: str) -> Path:
    home = root / name
    home.mkdir(parents=True)
    return home


def gpu_app(replay: Path, polls: int, name: str, root: Path):
    from cep_console.gpu_feed import GpuFeed

    home = snap_home(root, name)
    feed = GpuFeed(replay, home)
    states = [feed.poll() for _ in range(polls)]
    app = CepConsole(make_options(home, replay=replay), feeds=False)

    async def run_before(pilot):
        for state in states:
            pilot.app.post_message(GpuUpdated(state))
        await pilot.pause(0.2)

    return app, run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "replay, polls", [(HEALTHY, 5), (NO_DRIVER, 1), (FALLEN, 5)], ids=["healthy", "nvml-missing", "xid79"]
)
def test_gpus(snap_compare, size, replay, polls, tmp_path):
    app, run_before = gpu_app(replay, polls, f"gpus-{replay.stem}", tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def runs_home(root: Path) -> Path:
    """Two real step-job runs under fixed job ids and run directories."""
    from cep_core.jobs.backend import LaunchSpec
    from cep_core.jobs.registry import Registry

    home = snap_home(root, "runs")
    registry = Registry(home)
    for i, (name, extra, end) in enumerate(
        [
            ("steps-ok", "", ("succeeded", "completed at step 6")),
            ("steps-bad", 'fail_kind = "config"\n', ("failed", "config: the config says to fail")),
        ]
    ):
        run_dir = home / "runs" / f"20261125-12000{i}-{name}-000{i}"
        run_dir.mkdir(parents=True)
        (run_dir / "run.toml").write_text(f"steps = 6\ndelay = 0\ncheckpoint_every = 2\n{extra}")
        command = [sys.executable, str(STEP_JOB), str(run_dir)]
        registry.create(
            LaunchSpec(job_id=f"j-snap-{i}", kind="train", run_dir=run_dir, command=command, name=name),
            "local",
        )
        with (run_dir / "stdout.log").open("w") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=60)
        registry.transition(f"j-snap-{i}", end[0], end[1])
    return home


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs(snap_compare, size, tmp_path):
    from cep_console.runs_feed import RunsFeed
    from cep_console.widgets.log_follower import LogFollower

    home = runs_home(tmp_path)
    state = RunsFeed(home).poll()
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)

    async def run_before(pilot):
        await pilot.press("2")
        pilot.app.post_message(RunsUpdated(state))
        await pilot.pause(0.1)
        await pilot.press("down")  # the completed run: its loss curve and log
        log = pilot.app.screen.query_one(LogFollower)
        await wait_for(pilot, lambda: "step 6/6" in "\n".join(log.lines), what="log")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_evals(snap_compare, size, tmp_path):
    home = snap_home(tmp_path, "evals")
    run_evaluation(home, tmp_path, "both-tracks")
    run_evaluation(home, tmp_path, "toolcall-only", tracks=("toolcall",))
    db = sqlite3.connect(home / "cep.db")
    for i, name in enumerate(["both-tracks", "toolcall-only"]):
        db.execute(
            "UPDATE evaluations SET id = ?, created = ? WHERE name = ?", (f"eval-{name}", 1e9 + i, name)
        )
    db.commit()
    db.close()
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)

    async def run_before(pilot):
        await pilot.press("3")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#evals").row_count == 2, what="evals")
        await pilot.press("down")
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def traces_home(root: Path) -> Path:
    from cep_core.tracer import TraceRow, TraceStore

    home = snap_home(root, "traces")
    store = TraceStore(home / "traces.db")
    rows = []
    for i in range(7):
        agent = ("planner", "main", "gpt-4o") if i < 5 else ("search", "web", "gpt-4o-mini")
        rows.append(
            TraceRow(
                id=f"01JD0000000000000000000{i:03d}",
                ts=1_764_000_000 + 60 * i,
                agent_type=agent[0],
                agent_name=agent[1],
                model=agent[2],
                system_prompt="You plan trips.",
                user_query=f"Plan a trip to city {i}",
                response=f'<tool_call name="book">{{"city": "c{i}"}}</tool_call>',
                success=i != 6,
                cost=0.01,
                execution_time=1.0 + i,
                error="timeout" if i == 6 else None,
            )
        )
    store.insert_many(rows)
    store.close()
    return home


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_traces(snap_compare, size, monkeypatch, tmp_path):
    from cep_console.traces_feed import TracesFeed

    home = traces_home(tmp_path)
    overview = TracesFeed(home / "traces.db", home, threshold=5).overview()
    monkeypatch.chdir(home)  # the screen names the store: a relative path reads the same on every run
    app = CepConsole(
        make_options(home, replay=HEALTHY, retrain_threshold=5, traces_db=Path("traces.db")), feeds=False
    )

    async def run_before(pilot):
        await pilot.press("4")
        pilot.app.post_message(TracesUpdated(overview))
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#traces").row_count == 7, what="traces")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, size, tmp_path):
    home = snap_home(tmp_path, "help")
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)

    async def run_before(pilot):
        from cep_console.screens.help import HelpScreen

        await pilot.press("2", "question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
