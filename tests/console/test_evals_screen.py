"""The Evals screen on real evaluations (the evaluation job's predictions backend scoring the shipped outputs
of an untuned small model): figures beside both baselines, error categories, worst examples, comparing."""

from __future__ import annotations

import pytest
from conftest import HEALTHY, make_options, run_evaluation, wait_for
from screen_text import screen_text
from textual.widgets import DataTable

from cep_console.app import CepConsole
from cep_console.screens.evals import CompareScreen

pytestmark = pytest.mark.anyio  # Pilot tests are async: anyio's plugin runs them on asyncio


async def test_evaluations_against_baselines_worst_examples_and_compare(home, tmp_path):
    run_evaluation(home, tmp_path / "work", "both-tracks")
    run_evaluation(home, tmp_path / "work", "toolcall-only", tracks=("toolcall",))
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        table = lambda: app.screen.query_one("#evals", DataTable)  # noqa: E731
        await wait_for(pilot, lambda: table().row_count == 2, what="two evaluations")
        await wait_for(pilot, lambda: "Worst toolcall examples" in screen_text(app), what="worst examples")
        text = screen_text(app)
        # Newest first: toolcall-only (0.625 toolcall F1: beats the small model, not the LLM's 0.74).
        assert "0.625 ▲small" in text
        # both-tracks: structured F1 0.8125 beats the LLM's 0.60.
        assert "0.812 ▲LLM" in text
        assert "invalid_json" in text  # error categories
        assert "Baselines — LLM: structured 0.60, toolcall 0.74" in text
        assert "ticket-names  F1 0.00" in text  # a worst example with its prompt, output and errors
        assert "Open a high-priority ticket titled 'VPN drops every hour'." in text
        assert "param_name_mismatch, missing_required_param" in text
        # Expected calls read as JSON, never as Python reprs ({'name': …}, True).
        expected = [line for line in text.splitlines() if line.strip().startswith("expected ")]
        assert any('[{"create_ticket": {"title": ' in line for line in expected), expected
        assert not any("{'" in line or "None" in line for line in expected), expected
        await pilot.press("c")
        await wait_for(
            pilot, lambda: any("Mark at least two" in n.message for n in app._notifications), what="needs two"
        )
        await pilot.press("space", "down", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "Comparing 2 evaluations" in text
        assert "structured_f1" in text and "toolcall_f1" in text and "0.74" in text and "0.6" in text


async def test_no_evaluations_yet_says_how_to_get_one(home):
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: "No evaluations under" in screen_text(app), what="empty message")


async def test_a_variant_of_an_ablation_shows_the_three_side_by_side(home, tmp_path, tiny_run):
    import os
    from pathlib import Path

    from cep_core.cli import main as cep

    shipped = Path(__file__).resolve().parents[2] / "cep_core" / "data" / "samples"
    config = tmp_path / "abl.toml"
    config.write_text(
        f'name = "abl"\nbackend = "hf"\nrun = "{tiny_run}"\n'
        f'[[sets]]\nsource = "{shipped / "demo_toolcall.jsonl"}"\nsample = 3\n'
        '[hf]\nmax_new_tokens = 8\ndevice = "cpu"\n'
    )
    previous = os.environ.get("CEP_HOME")
    os.environ["CEP_HOME"] = str(home)
    try:
        assert cep(["eval", "ablation", str(config), "--json"]) == 0
    finally:
        if previous is None:
            os.environ.pop("CEP_HOME")
        else:
            os.environ["CEP_HOME"] = previous
    app = CepConsole(make_options(home, replay=HEALTHY))
    async with app.run_test(size=(120, 48)) as pilot:
        await pilot.press("3")
        table = lambda: app.screen.query_one("#evals", DataTable)  # noqa: E731
        await wait_for(pilot, lambda: table().row_count == 3, what="the three variants")
        await wait_for(pilot, lambda: "gain: training" in screen_text(app), what="the ablation table")
        text = screen_text(app)
        for label in ("base, no CEP", "base + CEP", "LoRA + CEP", "gain: CEP", "vs LLM baseline"):
            assert label in text
        assert "abl:lora+cep" in text and "abl:base" in text
