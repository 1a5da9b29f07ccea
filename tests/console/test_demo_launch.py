"""The newcomer's path, from the keyboard: Runs (2), the demo run (d), pre-flight, launch (ctrl+l); a real
training job on the built-in tiny model starts, the Runs screen shows its steps advancing and its end.

This is the one slow console test (about a minute on 2 CPU cores: the job builds its tokenizer and model and
trains on the CPU). The form's fields are edited from the keyboard to a short run (10 steps of batch 4; the
demo logs every 5 steps, so the screen sees step 5, then step 10 and the end).
"""

from __future__ import annotations

import pytest
from conftest import HEALTHY, make_options, wait_for
from screen_text import screen_text

from cep_console.app import CepConsole
from cep_console.options import write_demo_config
from cep_console.screens.launch import LaunchScreen
from cep_console.widgets.log_follower import LogFollower

pytestmark = pytest.mark.anyio  # Pilot tests are async: anyio's plugin runs them on asyncio


async def _set(pilot, tabs: int, value: str) -> None:
    await pilot.press(*(["tab"] * tabs), "ctrl+u", *value)


async def test_launch_the_demo_run_from_the_keyboard_and_watch_it_end(home):
    options = make_options(home, replay=HEALTHY, demo=True)
    options.demo_config = write_demo_config(home)
    app = CepConsole(options)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "d")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the form")
        form = app.screen
        await wait_for(pilot, lambda: bool(form.checks), timeout=60, what="the demo's pre-flight")
        assert all(c.status == "ok" for c in form.checks), form.checks
        # the ready-made list -> name -> max steps (7 tabs), -> batch size (2 more)
        assert app.focused is not None and app.focused.id == "f-preset"
        await _set(pilot, 7, "10")
        assert app.focused.id == "f-max_steps"
        await _set(pilot, 2, "4")
        assert app.focused.id == "f-batch_size"
        assert form.checks == []  # the form changed: its checks are void until run again
        await pilot.press("ctrl+l")  # refused without checks
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: bool(form.checks), timeout=60, what="the pre-flight again")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen), timeout=30, what="launched")

        def demo():
            rows = [r for r in (app.runs_state.rows if app.runs_state else []) if r.name == "demo"]
            return rows[0] if rows else None

        await wait_for(pilot, lambda: demo() is not None and demo().state == "running", what="running")
        assert demo().total_steps in (None, 10)
        await wait_for(
            pilot,
            lambda: (demo().step or 0) > 0 or demo().state != "running",
            timeout=150,
            what="a first step",
        )
        assert demo().state == "running", demo().reason
        first = demo().step
        await wait_for(pilot, lambda: demo().state != "running", timeout=150, what="the end")
        final = demo()
        assert final.state == "succeeded", final.reason
        assert final.step == 10 and final.step > first
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "demo succeeded" in text and "10/10" in text
        log = "\n".join(app.screen.query_one(LogFollower).lines)
        assert "pre-flight model: ok" in log
        assert any(n.title == "Run succeeded (was running)" for n in app._notifications)
    runs = list((home / "runs").glob("*-demo-*/adapter"))
    assert runs and (runs[0] / "adapter_config.json").is_file()
