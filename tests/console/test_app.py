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
        # the footer's short label ("d Demo"), and help's longer word on what the key does
        assert "Launch a ready-made run: the tiny demo" in text
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
            line
            for line in screen_text(app).splitlines()
            if line.replace("█", " ").split()[-1:] == ["runs.launch"]
        )
        assert row.replace("█", " ").split()[0] == "l"


async def test_the_command_palette_offers_every_action(home):
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in (
            "Show Runs",
            "Launch a run",
            "Launch a ready-made run",
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


def test_a_home_that_is_a_file_is_named_and_exits_2(tmp_path, capsys):
    not_a_dir = tmp_path / "home-file"
    not_a_dir.write_text("x")
    app = CepConsole(None, request={"home": str(not_a_dir)}, feeds=False)

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.return_code is not None, what="the app to give up")

    import asyncio

    asyncio.run(run())
    assert app.return_code == 2
    assert app.options is None


async def test_options_are_resolved_after_the_first_frame_and_feeds_start(home):
    app = CepConsole(None, request={"home": str(home), "replay": str(HEALTHY)})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.options is not None, what="options resolved")
        assert app.options.home == home and app.options.replay == HEALTHY
        await wait_for(pilot, lambda: "HOST OK" in screen_text(app), what="the replayed host")
        assert str(home) in app.sub_title


def test_the_first_screen_is_shown_before_cep_core_is_loaded(tmp_path):
    """`cep-console` checks its command line with the standard library and loads cep_core (sqlite-utils and
    the rest, ~60 ms) only once the GPU screen is up: a module-level cep_core import would undo that. The charts
    (plotext) are not loaded for it either: the screens that draw them import them when first shown."""
    import json
    import subprocess
    import sys
    import textwrap

    report = tmp_path / "report.json"
    code = textwrap.dedent(f"""
        import asyncio, json, sys
        from pathlib import Path
        import cep_console.app as app_module
        seen = {{}}
        original = app_module.CepConsole._ensure_options
        def spy(self):
            if not seen:
                seen["loaded"] = sorted(
                    m for m in sys.modules if m.startswith(("cep_core", "sqlite_utils", "plotext", "textual_plotext"))
                )
                seen["screen"] = type(self.screen).__name__
                seen["banner"] = str(self.screen.query_one("#gpu-banner").render())
            return original(self)
        app_module.CepConsole._ensure_options = spy
        async def main():
            app = app_module.CepConsole(None, request={{"home": {str(tmp_path / "home")!r}}}, feeds=False)
            async with app.run_test(size=(80, 24)) as pilot:
                while app.options is None:
                    await pilot.pause(0.05)
        asyncio.run(main())
        Path({str(report)!r}).write_text(json.dumps(seen))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
    seen = json.loads(report.read_text())
    assert seen["screen"] == "GpuScreen" and "Sampling the GPUs" in seen["banner"]
    assert seen["loaded"] == []


def test_the_demo_home_is_removed_at_exit_unless_a_run_is_live(tmp_path, monkeypatch):
    from conftest import start_step_run, wait_job

    from cep_console.options import discard_temporary_home, resolve_options

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    quiet = resolve_options(demo=True)
    assert quiet.temporary_home and quiet.home.parent == tmp_path and quiet.demo_config.is_file()
    assert discard_temporary_home(quiet) is None
    assert not quiet.home.exists()

    busy = resolve_options(demo=True)
    job = start_step_run(busy.home, "still-going", steps=200, delay=0.05)
    note = discard_temporary_home(busy)
    assert note is not None and job.id in note and str(busy.home) in note
    assert busy.home.is_dir()
    from cep_core.jobs.manager import JobManager

    JobManager(home=busy.home).stop(job.id, grace_s=5)
    wait_job(busy.home, job.id)
    assert discard_temporary_home(busy) is None and not busy.home.exists()

    kept = resolve_options(home=str(tmp_path / "mine"), demo=True)
    assert not kept.temporary_home
    assert discard_temporary_home(kept) is None and kept.home.is_dir()


@pytest.mark.parametrize("width", [80, 160])
async def test_every_footer_key_fits_at_80_columns_and_the_palette_joins_when_wide(home, width):
    app = CepConsole(make_options(home, replay=HEALTHY), feeds=False)
    async with app.run_test(size=(width, 24 if width == 80 else 48)) as pilot:
        for mode_key in "1234":
            await pilot.press(mode_key)
            await pilot.pause(0.1)
            footer = screen_text(app).splitlines()[-1]
            shown = [b for b in [*app.screen.BINDINGS, *app.BINDINGS] if b.show]
            assert shown
            for binding in shown:
                label = f"{app.get_key_display(binding)} {binding.description}"
                assert label in footer, f"{type(app.screen).__name__}: {label!r} not in {footer!r}"
            assert ("^p palette" in footer) is (width >= 100)


async def test_demo_fills_its_fresh_home_with_traces_and_an_evaluation(tmp_path, monkeypatch):
    """`cep-console --demo`: a fresh home gets real captures (an agent ready to retrain, one short of it) and
    a real evaluation job; Evals and Traces show them; at exit the home goes."""
    import tempfile

    from cep_console.options import discard_temporary_home

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    app = CepConsole(None, request={"demo": True})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.options is not None, what="options")
        assert app.options.temporary_home and app.options.home.parent == tmp_path
        assert app.options.retrain_threshold == 30
        await pilot.press("4")
        await wait_for(
            pilot,
            lambda: app.traces_overview is not None and len(app.traces_overview.agents) == 2,
            timeout=30,
            what="the demo traces",
        )
        agents = {str(a.key): a for a in app.traces_overview.agents}
        assert agents["travel/planner"].ready and not agents["support/search"].ready
        await wait_for(
            pilot, lambda: "40/30 READY" in screen_text(app), what="the ready agent, at 80 columns"
        )
        await wait_for(
            pilot,
            lambda: app.runs_state is not None and any(r.state == "succeeded" for r in app.runs_state.rows),
            timeout=60,
            what="the demo evaluation job",
        )
        await pilot.press("3")
        await wait_for(pilot, lambda: "sample-outputs" in screen_text(app), what="the evaluation in Evals")
        assert any(n.message.startswith("Demo home:") for n in app._notifications)
    assert discard_temporary_home(app.options) is None
    assert not app.options.home.exists()
