"""A real model from the console: `d` offers the ready-made runs, the SmolLM2 recipe fills the form, its pre-flight
passes on this CPU host, and the launched job trains SmolLM2-135M-Instruct to its end (two steps here; the
recipe's own 120 are measured in docs/training.md)."""

from __future__ import annotations

import pytest
from conftest import HEALTHY, make_options, wait_for
from textual.widgets import Input, Select

from cep_console.app import CepConsole
from cep_console.options import write_demo_config
from cep_console.screens.launch import LaunchScreen

pytestmark = pytest.mark.anyio


async def test_the_smollm2_recipe_is_launched_from_the_form_and_trains(home, smollm2_folder):
    options = make_options(home, replay=HEALTHY, demo=True)
    options.demo_config = write_demo_config(home)
    app = CepConsole(options)
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("2", "d")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the form")
        form = app.screen
        await wait_for(pilot, lambda: bool(form.checks), timeout=60, what="the demo's pre-flight")
        assert form.query_one("#f-model", Input).value == "builtin:tiny"
        form.query_one("#f-preset", Select).value = "smollm2"  # what choosing it in the list does
        await wait_for(
            pilot,
            lambda: form.query_one("#f-model", Input).value == "builtin:smollm2",
            what="the recipe's fields",
        )
        assert form.query_one("#f-dataset", Input).value.startswith(
            "bfcl:simple_python,multiple, bfcl:irrelevance"
        )
        assert (home / "demo" / "smollm2.toml").is_file()  # the recipe copied into the home, to read and edit
        form.query_one("#f-max_steps", Input).value = "2"
        form.query_one("#f-batch_size", Input).value = "2"
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: bool(form.checks), timeout=120, what="the recipe's pre-flight")
        by_name = {c.name: c for c in form.checks}
        assert all(c.status == "ok" for c in form.checks), form.checks
        assert "SmolLM2-135M-Instruct" in by_name["model"].detail
        assert "trains on the CPU" in by_name["gpu"].detail
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen), timeout=30, what="launched")

        def run():
            rows = [
                r for r in (app.runs_state.rows if app.runs_state else []) if r.name == "smollm2-toolcalls"
            ]
            return rows[0] if rows else None

        await wait_for(
            pilot, lambda: run() is not None and run().state != "running", timeout=600, what="the end"
        )
        assert run().state == "succeeded", run().reason
        assert run().step == 2
    adapters = list((home / "runs").glob("*-smollm2-toolcalls-*/adapter/adapter_config.json"))
    assert adapters and '"base_model_name_or_path": "' + str(smollm2_folder) in adapters[0].read_text()
