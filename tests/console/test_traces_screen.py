"""The Traces screen on a trace store filled by real WorkflowTracer captures: stats and threshold progress,
keyset pages, filters, full-text search, the detail view, export, retrain, the ready notification."""

from __future__ import annotations

import json

import pytest
from conftest import HEALTHY, capture_traces, make_options, wait_for
from screen_text import screen_text
from textual.widgets import DataTable

from cep_console.app import CepConsole
from cep_console.screens.traces import TraceDetail

pytestmark = pytest.mark.anyio  # Pilot tests are async: anyio's plugin runs them on asyncio


def _traces(app) -> DataTable:
    return app.screen.query_one("#traces", DataTable)


async def _open(pilot, app):
    await pilot.press("4")
    await wait_for(
        pilot, lambda: app.traces_overview is not None and _traces(app).row_count > 0, what="traces shown"
    )
    await pilot.pause(0.1)


async def test_stats_show_progress_to_the_threshold_and_the_ready_agent(home):
    capture_traces(home / "traces.db")
    app = CepConsole(make_options(home, replay=HEALTHY, retrain_threshold=5))
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(pilot, app)
        text = screen_text(app)
        assert "8 traces in" in text
        assert "planner/main" in text and "5/5 READY" in text
        assert "search/web" in text and "66.7%" in text and "2/5" in text
        assert _traces(app).row_count == 8


async def test_search_filter_and_detail(home):
    capture_traces(home / "traces.db")
    app = CepConsole(make_options(home, replay=HEALTHY, retrain_threshold=5))
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(pilot, app)
        await pilot.press("slash")
        await pilot.press(*"zebra", "enter")
        await wait_for(pilot, lambda: _traces(app).row_count == 3, what="3 zebra traces")
        assert "search='zebra'" in screen_text(app)
        await pilot.press("f")
        await pilot.press(*"success=no", "enter")
        await wait_for(pilot, lambda: _traces(app).row_count == 1, what="the failed one")
        await pilot.press("escape")  # clear search and filters
        await wait_for(pilot, lambda: _traces(app).row_count == 8, what="all again")
        await pilot.press("f")
        await pilot.press(*"agent=planner/main", "enter")
        await wait_for(pilot, lambda: _traces(app).row_count == 5, what="planner only")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TraceDetail), what="detail")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "System prompt" in text and "You plan trips." in text
        assert "Plan a trip to city number 4" in text and '<tool_call name="book">' in text
        assert "redactions 0" in text
        await pilot.press("escape")
        await pilot.press("f")
        await pilot.press(*"colour=red", "enter")
        await wait_for(
            pilot,
            lambda: any("unknown filter" in n.message for n in app._notifications),
            what="an error for a bad filter",
        )


async def test_keyset_pages_walk_older_and_back(home):
    from cep_core.tracer import WorkflowTracer

    tracer = WorkflowTracer(home / "traces.db", strict=True)
    tracer.capture_many(
        [
            {
                "agent_type": "bulk",
                "agent_name": "a",
                "model_used": "m",
                "user_query": f"question {i:03d}",
                "assistant_response": "ok",
            }
            for i in range(120)
        ]
    )
    tracer.close()
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(pilot, app)
        table = _traces(app)
        first_ids = [str(k.value) for k in table.rows]
        assert len(first_ids) == 50
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: [str(k.value) for k in table.rows][:1] != first_ids[:1], what="page 2")
        second = [str(k.value) for k in table.rows]
        assert max(second) < min(first_ids)  # keyset: strictly older
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: table.row_count == 20, what="the last page")
        assert "page 3" in screen_text(app)
        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: [str(k.value) for k in table.rows] == first_ids, what="back to page 1")


async def test_export_and_retrain_a_ready_agent(home):
    capture_traces(home / "traces.db")
    app = CepConsole(make_options(home, replay=HEALTHY, retrain_threshold=5))
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(pilot, app)
        await pilot.press("down")  # search/web: not ready
        await pilot.press("t")
        await wait_for(
            pilot, lambda: any("not ready" in n.message for n in app._notifications), what="not ready"
        )
        await pilot.press("up")  # planner/main
        app.screen.query_one("#agents").focus()
        await pilot.press("x")
        await wait_for(
            pilot, lambda: any(n.message.startswith("exported") for n in app._notifications), what="export"
        )
        exports = list((home / "datasets").glob("traces-planner-main-*/train.jsonl"))
        assert exports
        rows = [json.loads(x) for x in exports[0].read_text().splitlines()]
        holdout = (exports[0].parent / "holdout.jsonl").read_text().splitlines()
        assert len(rows) + len(holdout) == 5 and all(r["agent"] == "planner/main" for r in rows)
        # After the export the planner has no new examples: it is no longer ready.
        app.wake("traces")
        await wait_for(pilot, lambda: "0/5" in screen_text(app), what="progress reset")


async def test_retrain_launches_a_real_run_and_ready_notification(home):
    from cep_core.jobs.manager import JobManager
    from cep_core.tracer import WorkflowTracer

    capture_traces(home / "traces.db", ready_agent_calls=4)
    app = CepConsole(make_options(home, replay=HEALTHY, retrain_threshold=5))
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(pilot, app)
        assert "4/5" in screen_text(app)
        tracer = WorkflowTracer(home / "traces.db", strict=True)
        tracer.capture_call("planner", "main", "gpt-4o", user_query="one more", assistant_response="done")
        tracer.close()
        app.wake("traces")
        await wait_for(
            pilot,
            lambda: any(n.title == "Agent planner/main is ready" for n in app._notifications),
            what="ready notification",
        )
        app.screen.query_one("#agents").focus()
        await pilot.press("t")
        await wait_for(
            pilot,
            lambda: any("launched" in n.message for n in app._notifications),
            timeout=30,
            what="retrain launched",
        )
    manager = JobManager(home=home)
    (job,) = manager.registry.list()
    assert job.name == "retrain-planner-main"
    assert (home / "retrain").is_dir()
    if job.state in ("running", "queued"):
        manager.stop(job.id, grace_s=10)


async def test_a_missing_trace_store_is_explained_and_not_created(home):
    app = CepConsole(make_options(home, replay=HEALTHY, traces_db=home / "nowhere" / "traces.db"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: app.traces_overview is not None, what="overview")
        await pilot.pause(0.1)
        assert "No trace store at" in screen_text(app)
        await pilot.press("x")
        await pilot.press("slash", "a", "enter")
        await pilot.pause(0.2)
        assert app.is_running
    assert not (home / "nowhere").exists()
