"""The App: modes on 1-4 shown in the footer, help with binding ids, remapped keys, the command palette,
the command line (errors named, exit 2), and `e` from a run to its evaluations."""

from __future__ import annotations

import pytest
from conftest import HEALTHY, make_options, run_evaluation, wait_for, wait_job
from screen_text import screen_text

from cep_console.app import CepConsole, main
from cep_console.screens.evals import EvalsScreen
from cep_console.screens.gpus import GpuScreen
from cep_console.screens.help import HelpScreen
from cep_console.screens.launch import LaunchScreen
from cep_console.screens.runs import RunsScreen
from cep_console.screens.traces import TracesScreen

pytestmark = pytest.mark.anyio  # Pilot tests are async: anyio's plugin runs them on asyncio


async def test_number_keys_switch_modes_and_the_footer_names_them(home):
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)
    async with app.run_test(size=(160, 48)) as pilot:
        assert isinstance(app.screen, GpuScreen)
        footer = screen_text(app).splitlines()[-1]
        for label in ("1 GPUs", "2 Runs", "3 Evals", "4 Traces", "? Help"):
            assert label in footer
        for key, cls, title in (
            ("2", RunsScreen, "Runs"),
            ("3", EvalsScreen, "Evals"),
            ("4", TracesScreen, "Traces"),
            ("1", GpuScreen, "GPUs"),
        ):
            await pilot.press(key)
            await pilot.pause(0.05)
            assert isinstance(app.screen, cls)
            assert f"CEP Console — {title}" in screen_text(app)


async def test_help_lists_keys_with_their_ids(home):
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.1)
        text = screen_text(app)
        for binding_id in ("runs.launch", "runs.stop", "runs.resume", "runs.evals", "mode.traces", "help"):
            assert binding_id in text
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_a_remapped_key_opens_the_launch_form(home):
    options = make_options(home, replay=HEALTHY, keymap={"runs.launch": "l"})
    app = CepConsole(options, feeds=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "l")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="the form on l")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.1)
        row = next(
            line for line in screen_text(app).splitlines() if "runs.launch" in line and "Launch" in line
        )
        assert row.replace("█", " ").split()[0] == "l"


async def test_the_command_palette_offers_every_action(home):
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in (
            "Show Runs",
            "Launch a run",
            "Launch the demo run",
            "Stop the selected run",
            "Resume the selected run",
            "Compare marked evaluations",
            "Search traces",
            "Export traces",
            "Retrain the selected agent",
            "Help",
        ):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"launch a run")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), what="launch form from palette")


async def test_e_opens_the_evaluations_of_the_selected_run(home, tmp_path):
    from cep_core.jobs.manager import JobManager

    run_evaluation(home, tmp_path / "w", "first")  # through the CLI: no job row
    config = tmp_path / "w" / "first.toml"
    job = JobManager(home=home).start_config(
        config, kind="eval", name="eval-job", env={"CEP_HOME": str(home)}
    )  # the same, as a job
    wait_job(home, job.id)
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.runs_state is not None and len(app.runs_state.rows) == 1)
        await pilot.pause(0.2)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalsScreen))
        await wait_for(pilot, lambda: "Evaluations of run" in screen_text(app), what="filtered")
        assert app.screen.query_one("#evals").row_count == 1


def test_command_line_errors_name_the_file_and_exit_2(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "--replay", str(tmp_path / "nope.json")]) == 2
    assert "replay file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["--home", str(tmp_path), "--keys", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err
