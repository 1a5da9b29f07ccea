"""The Runs screen on a home filled by real jobs (the step job through JobManager): the table, the selected
run's progress and log, live steps and the end of a run, notifications, stop and resume from the keyboard."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import HEALTHY, make_options, start_step_run, wait_for
from screen_text import screen_text
from textual.app import App, ComposeResult

from cep_console.app import CepConsole
from cep_console.messages import LogLines, RunsUpdated
from cep_console.screens.confirm import ConfirmScreen
from cep_console.widgets.log_follower import LogFollower

pytestmark = pytest.mark.anyio  # Pilot tests are async: anyio's plugin runs them on asyncio


def _rows(app):
    return {r.name: r for r in app.runs_state.rows} if app.runs_state else {}


async def test_finished_runs_show_their_figures_and_the_selected_log(finished_home):
    app = CepConsole(make_options(finished_home, replay=HEALTHY))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: len(_rows(app)) == 2, what="two runs")
        log = app.screen.query_one(LogFollower)
        await wait_for(pilot, lambda: log.lines_seen > 0, what="the followed log")
        text = screen_text(app)
        assert "steps-ok" in text and "succeeded" in text and "6/6" in text and "0.1667" in text
        assert "steps-bad" in text and "failed" in text
        # The newest run is selected: the failed one, with the reason the job wrote.
        assert "steps-bad failed · attempt 1 · config: the config says to fail" in text
        await pilot.press("down")
        await wait_for(pilot, lambda: "step 6/6" in "\n".join(log.lines), what="the other run's log")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "steps-ok succeeded" in text
        assert "loss 0.1667 (min 0.1667)" in text


async def test_a_live_run_advances_then_ends_with_a_notification(home):
    app = CepConsole(make_options(home, replay=HEALTHY))
    updates: list[RunsUpdated] = []
    hook = lambda m: updates.append(m) if isinstance(m, RunsUpdated) else None  # noqa: E731
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await pilot.press("2")
        job = start_step_run(home, "live", steps=12, delay=0.15)
        await wait_for(
            pilot, lambda: _rows(app).get("live") and (_rows(app)["live"].step or 0) >= 2, what="steps"
        )
        first = _rows(app)["live"].step
        await wait_for(pilot, lambda: (_rows(app)["live"].step or 0) > first, what="more steps")
        assert _rows(app)["live"].state == "running"
        await wait_for(pilot, lambda: _rows(app)["live"].state == "succeeded", what="the end")
        await pilot.pause(0.3)
        steps_seen = sorted({r.step for u in updates for r in u.state.rows if r.job_id == job.id and r.step})
        assert len(steps_seen) >= 3 and steps_seen[-1] == 12
        assert any(n.title == "Run succeeded (was running)" for n in app._notifications)
        text = screen_text(app)
        assert "12/12" in text and "live succeeded" in text
        assert "step 12/12" in "\n".join(app.screen.query_one(LogFollower).lines)


async def test_stop_then_resume_from_the_keyboard(home):
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        start_step_run(home, "long", steps=400, delay=0.05)
        await wait_for(
            pilot, lambda: _rows(app).get("long") and (_rows(app)["long"].step or 0) >= 2, what="running"
        )
        # `s` asks first: "n" (or esc) leaves the run going, "y" stops it.
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "Stop long (" in screen_text(app) and "writes a checkpoint" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="the answer")
        step_then = _rows(app)["long"].step
        await wait_for(pilot, lambda: (_rows(app)["long"].step or 0) > step_then, what="still stepping")
        assert _rows(app)["long"].state == "running"
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: _rows(app)["long"].state == "stopped", what="stopped")
        stopped_at = _rows(app)["long"].step
        assert 0 < stopped_at < 400
        await pilot.press("r")
        await wait_for(pilot, lambda: any(r.attempt == 2 for r in app.runs_state.rows), what="attempt 2")
        second = next(r for r in app.runs_state.rows if r.attempt == 2)
        assert second.state == "running"
        # The new attempt is selected by itself (its detail and log follow it); stop it too, so no job
        # outlives the test.
        await wait_for(pilot, lambda: app.screen.selected == second.job_id, what="new attempt selected")
        table = app.screen.query_one("#jobs")
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == second.job_id
        await pilot.pause(0.2)
        assert "attempt 2" in screen_text(app)
        await wait_for(
            pilot, lambda: (_attempt(app, 2).step or 0) > stopped_at + 2, what="attempt 2 stepping"
        )
        assert _attempt(app, 1).step == stopped_at  # the first attempt's row keeps where it stopped
        await pilot.press("s", "y")
        await wait_for(
            pilot,
            lambda: all(r.state == "stopped" for r in app.runs_state.rows),
            timeout=30,
            what="both stopped",
        )
        assert min(r.step for r in app.runs_state.rows) >= stopped_at  # resumed from its checkpoint


def _attempt(app, n: int):
    return next(r for r in app.runs_state.rows if r.attempt == n)


class _LogApp(App):
    def __init__(self, path: Path, max_lines: int = 50):
        super().__init__()
        self.path = path
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield LogFollower(max_lines=self.max_lines)

    def on_mount(self) -> None:
        self.query_one(LogFollower).follow(self.path)


async def test_the_log_view_follows_appends_truncation_and_replacement_with_bounded_lines(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("")
    app = _LogApp(path, max_lines=50)
    messages: list[LogLines] = []
    hook = lambda m: messages.append(m) if isinstance(m, LogLines) else None  # noqa: E731
    async with app.run_test(message_hook=hook) as pilot:
        log = app.query_one(LogFollower)
        with path.open("a") as handle:
            for i in range(500):
                handle.write(f"line {i}\n")
        await wait_for(pilot, lambda: log.lines_seen == 500, what="500 lines")
        assert len(log.lines) == 50 and log.lines[-1] == "line 499"  # bounded: the oldest are pruned
        path.write_text("after truncation\n")
        await wait_for(pilot, lambda: log.lines and log.lines[-1] == "after truncation", what="truncation")
        assert any(m.reset == "truncated" for m in messages)
        assert "was truncated" in log.lines[0]
        tmp = tmp_path / "new.log"
        tmp.write_text("replaced 1\nreplaced 2\n")
        os.replace(tmp, path)
        await wait_for(pilot, lambda: log.lines and log.lines[-1] == "replaced 2", what="replacement")
        assert any(m.reset == "replaced" for m in messages)
        await asyncio.sleep(0)


async def test_a_flood_of_log_lines_leaves_memory_bounded(tmp_path):
    """40,000 lines in 40 bursts: the view keeps 50, and no copy of the old lines stays alive anywhere
    (Textual's Log would otherwise keep each burst in a width-measuring worker)."""
    import tracemalloc

    path = tmp_path / "stdout.log"
    path.write_text("")
    app = _LogApp(path, max_lines=50)
    async with app.run_test() as pilot:
        log = app.query_one(LogFollower)
        tracemalloc.start()
        try:
            for burst in range(40):
                with path.open("a") as handle:
                    handle.write("".join(f"burst {burst} line {i} " + "x" * 100 + "\n" for i in range(1000)))
                await pilot.pause(0.02)
            await wait_for(
                pilot,
                lambda: log.lines and log.lines[-1].startswith("burst 39 line 999"),
                what="the last line",
            )
            await pilot.pause(0.3)
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(True, "*cep_core/runs/tail.py")]
            )
            held = sum(stat.size for stat in snapshot.statistics("filename"))
        finally:
            tracemalloc.stop()
        assert len(log.lines) == 50
        # The leak kept every burst (4.5 MB); what is alive now is the view plus at most a read chunk in flight
        # (a 256 KiB read can be mid-way when the snapshot is taken on a busy machine).
        assert held < 1_000_000, f"{held} bytes of log lines still alive"
