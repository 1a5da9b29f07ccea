"""Evaluations from the console: the form (v on Runs for the selected run, n on Evals for a model) starts an
evaluation job through cep_core.evaluation.launch, the path `cep eval --detach` takes; the Evals screen
reloads when an evaluation ends; `e` on a run lists that run's evaluations and never another's examples.

The end-to-end test trains the built-in tiny model for a few steps (a real training job), then evaluates
its adapter from the console with the hf backend on held-out rows of its own data."""

from __future__ import annotations

import asyncio

import pytest
from conftest import HEALTHY, make_options, run_evaluation, start_step_run, wait_for, wait_job
from screen_text import screen_text
from textual.widgets import DataTable, Input

from cep_console.app import CepConsole
from cep_console.screens.eval_launch import EvalLaunchScreen
from cep_console.screens.evals import EvalsScreen

pytestmark = pytest.mark.anyio


def _evals(app) -> DataTable:
    return app.screen.query_one("#evals", DataTable)


async def test_the_evals_screen_shows_an_evaluation_when_it_ends_without_being_left(home, tmp_path):
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: "No evaluations under" in screen_text(app), what="empty")
        await asyncio.to_thread(run_evaluation, home, tmp_path / "w", "arrives-later")
        await wait_for(pilot, lambda: _evals(app).row_count == 1, timeout=15, what="the new evaluation")
        await wait_for(pilot, lambda: "Worst " in screen_text(app), what="its examples")
        assert isinstance(app.screen, EvalsScreen) and "arrives-later" in screen_text(app)


async def test_e_on_a_run_lists_its_evaluations_and_only_their_examples(home, tmp_path):
    from cep_core.jobs.manager import JobManager

    run_evaluation(home, tmp_path / "w", "scored")
    job = JobManager(home=home).start_config(tmp_path / "w" / "scored.toml", kind="eval", name="scored-job")
    wait_job(home, job.id)
    plain = start_step_run(home, "no-evals", steps=2)
    wait_job(home, plain.id)
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.runs_state is not None and len(app.runs_state.rows) == 2)
        await pilot.press("down")  # the evaluation job (the step run, newer, is first)
        await wait_for(pilot, lambda: app.screen.selected == job.id, what="the eval job selected")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalsScreen))
        await wait_for(pilot, lambda: "Worst " in screen_text(app), what="its examples")
        assert _evals(app).row_count == 1 and "Evaluations of run" in screen_text(app)
        await pilot.press("2", "up")
        await wait_for(pilot, lambda: app.screen.selected == plain.id, what="the plain run selected")
        await pilot.press("e")
        await wait_for(pilot, lambda: "has no evaluation yet" in screen_text(app), what="none for this run")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert _evals(app).row_count == 0
        assert "Worst" not in text and "F1 0.00" not in text  # not the other run's examples
        await pilot.press("escape")  # all evaluations again
        await wait_for(pilot, lambda: _evals(app).row_count == 2, what="all")


async def test_the_form_names_a_bad_field_and_starts_nothing(home, tmp_path):
    run_evaluation(home, tmp_path / "w", "existing")
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: _evals(app).row_count == 1)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalLaunchScreen), what="the form")
        form = app.screen
        assert form.query_one("#e-kind").value == "model" and form.query_one("#e-target", Input).value == ""
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: "name the run or the model" in screen_text(app), what="target named")
        form.query_one("#e-target", Input).value = str(tmp_path)
        form.query_one("#e-sample-0", Input).value = "thirty"
        await pilot.press("ctrl+l")
        await wait_for(
            pilot,
            lambda: (
                "evaluation form (field 'sets[0].sample'): 'thirty' is not a whole number" in screen_text(app)
            ),
            what="the field named",
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalsScreen), what="cancelled")
        assert len(list((home / "runs").iterdir())) == 1  # the form started nothing


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """A real training job of the built-in tiny model (4 steps on the CPU), through the job manager."""
    import os

    from cep_core.jobs.manager import JobManager
    from cep_core.training.config import TrainConfig, to_toml

    home = tmp_path_factory.mktemp("trained") / "home"
    home.mkdir()
    config = TrainConfig(name="tiny", device="cpu")
    config.data.sources = ["builtin:sample"]
    config.data.cep = "compact"
    config.train.max_steps = 4
    config.train.batch_size = 2
    config.train.max_seq_length = 1024
    config.train.save_steps = 100
    path = home / "tiny.toml"
    path.write_text(to_toml(config))
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        job = JobManager(home=home).start_config(path, name="tiny")
        job = wait_job(home, job.id, timeout=300)
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
    assert job.state == "succeeded", (job.reason, (home / "runs").glob("*/stdout.log"))
    return home, job


async def test_v_on_a_trained_run_evaluates_its_adapter_and_evals_shows_the_result(trained_home, monkeypatch):
    home, train_job = trained_home
    monkeypatch.setenv("CEP_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.runs_state is not None and app.screen.selected == train_job.id)
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalLaunchScreen), what="the form")
        form = app.screen
        assert form.query_one("#e-kind").value == "run"
        assert form.query_one("#e-target", Input).value == train_job.run_dir.rsplit("/", 1)[-1]
        assert form.query_one("#e-use-adapter").value is True
        assert "▐✓▌ the run's LoRA adapter" in screen_text(app)
        # Held-out rows of the run's own data, a few of them, short answers: a CPU evaluation in seconds.
        form.query_one("#e-set-0", Input).value = "hermes:builtin:sample"
        form.query_one("#e-sample-0", Input).value = "3"
        form.query_one("#e-set-1", Input).value = ""
        form.query_one("#e-max-new-tokens", Input).value = "16"
        await pilot.press("ctrl+l")
        await wait_for(
            pilot, lambda: not isinstance(app.screen, EvalLaunchScreen), timeout=30, what="started"
        )
        await wait_for(
            pilot,
            lambda: any(r.kind == "eval" for r in app.runs_state.rows),
            what="the evaluation job on Runs",
        )
        await pilot.press("3")
        await wait_for(pilot, lambda: _evals(app).row_count == 1, what="listed while it runs")
        await wait_for(
            pilot,
            # The data first, then the screen: a frame caught mid-refresh can lack the row's state word.
            lambda: (
                all(r.state != "running" for r in app.screen.rows.values())
                and "tiny-lora" in screen_text(app)
                and "running" not in screen_text(app).split("Worst")[0]
            ),
            timeout=240,
            what="the evaluation's end, shown without leaving the screen",
        )
        (row,) = app.screen.rows.values()
        assert row.state == "completed" and row.n == 3 and row.cep_variant == "compact"
        assert row.model == "builtin:tiny" and row.adapter.endswith("/adapter")
        await wait_for(pilot, lambda: "Worst " in screen_text(app), what="its examples")
