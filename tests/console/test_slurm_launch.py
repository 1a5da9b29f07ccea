"""The launch form on the Slurm backend, driven with the mouse: the footer's "2 Runs", the form's fields, the
backend select, the Pre-flight and Launch buttons. A real single-node Slurm (scripts/slurm-up.sh) runs the
training job on the built-in tiny model; the Runs screen shows it as a slurm job, following it to its end.
"""

from __future__ import annotations

import pytest
from conftest import HEALTHY, make_options, wait_for
from screen_text import screen_text

from cep_console.app import CepConsole
from cep_console.options import write_demo_config
from cep_console.screens.launch import LaunchScreen
from cep_console.screens.runs import RunsScreen

pytestmark = [pytest.mark.anyio, pytest.mark.slurm]


async def _type_into(pilot, selector: str, value: str) -> None:
    await pilot.click(selector)  # the cursor lands where the click did: at the start
    await pilot.press("end", "ctrl+u", *value)


@pytest.fixture
def cancel_left_jobs(home):
    """A failed test must not leave its job holding the one-node cluster's CPUs for the tests after it."""
    yield
    from cep_core.jobs.manager import JobManager
    from cep_core.jobs.registry import ACTIVE_STATES

    manager = JobManager(home=home)
    for job in manager.registry.list(states=ACTIVE_STATES):
        manager.stop(job.id, grace_s=5)


async def test_launch_on_slurm_with_the_mouse_and_watch_it_end(home, slurm_cluster, cancel_left_jobs):
    from textual.widgets._footer import FooterKey

    options = make_options(home, replay=HEALTHY, demo=True)
    options.demo_config = write_demo_config(home)
    app = CepConsole(options)
    async with app.run_test(size=(120, 40)) as pilot:
        runs_key = next(k for k in app.screen.query(FooterKey) if k.key == "2")
        assert await pilot.click(runs_key)
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="Runs on a click")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the form")
        form = app.screen
        await wait_for(pilot, lambda: bool(form.checks), timeout=60, what="the demo's pre-flight")
        await _type_into(pilot, "#f-name", "on-slurm")
        await _type_into(pilot, "#f-max_steps", "2")
        await _type_into(pilot, "#f-batch_size", "2")
        await pilot.click("#f-backend")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: form._read_form().backend == "slurm", what="slurm chosen")
        assert form.checks == []  # changed: the checks must run again
        await pilot.click("#check")
        await wait_for(pilot, lambda: bool(form.checks), timeout=60, what="the pre-flight")
        assert all(c.status == "ok" for c in form.checks), form.checks
        await pilot.pause(0.1)
        assert await pilot.click("#launch")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen), timeout=30, what="launched")

        def row():
            rows = [r for r in (app.runs_state.rows if app.runs_state else []) if r.name == "on-slurm"]
            return rows[0] if rows else None

        await wait_for(pilot, lambda: row() is not None, what="the run in the table")
        assert row().backend == "slurm"
        await wait_for(pilot, lambda: row().state not in ("queued", "running"), timeout=180, what="the end")
        assert row().state == "succeeded", row().reason
        assert row().step == 2
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "on-slurm" in text and "slurm" in text and "succeeded" in text
