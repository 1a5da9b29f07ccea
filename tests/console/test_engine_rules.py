"""The console holds no rule of its own: the retrain threshold, the temperature scale, the launch form's
defaults and CEP variants, what beats a baseline and the error counts all come from cep_core."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import HEALTHY, capture_traces, make_options, run_evaluation
from hypothesis import given
from hypothesis import strategies as st

from cep_console.app import build_parser
from cep_console.evals_feed import load_evaluations
from cep_console.gpu_feed import metric_values
from cep_console.launch_form import CEP_VARIANTS, LaunchRequest, write_config
from cep_console.screens.evals import figure_cell
from cep_console.traces_feed import TracesFeed
from cep_core.cli import main
from cep_core.gpu.health import HealthSettings, evaluate
from cep_core.gpu.replay import ReplaySource
from cep_core.gpu.sample import sample_once
from cep_core.prompts import prefix
from cep_core.scoring import baselines
from cep_core.tracer.thresholds import DEFAULT_THRESHOLD
from cep_core.training.config import TrainConfig, load_config

# --- the retrain threshold ---------------------------------------------------------------------------------


def test_the_console_without_a_threshold_uses_the_engine_default(tmp_path):
    capture_traces(tmp_path / "traces.db")
    options = make_options(tmp_path)
    feed = TracesFeed(options.traces_db, options.home, options.retrain_threshold)
    overview = feed.overview()
    assert overview.threshold == DEFAULT_THRESHOLD
    assert all(a.threshold == DEFAULT_THRESHOLD for a in overview.agents)


def _default_in(help_text: str) -> int:
    """The N of `--threshold … (default N)` in a help text (wrapped lines joined)."""
    flat = " ".join(help_text.split())
    match = re.search(r"--threshold N .*?\(default (\d+)\)", flat)
    assert match, flat
    return int(match.group(1))


def test_both_help_texts_name_the_engine_default(capsys):
    # The help texts are written out because neither parser may import the tracer (start-up time).
    assert _default_in(build_parser().format_help()) == DEFAULT_THRESHOLD
    with pytest.raises(SystemExit):
        main(["traces", "--help"])
    cli_help = capsys.readouterr().out.replace("--threshold THRESHOLD", "--threshold N")
    assert _default_in(cli_help) == DEFAULT_THRESHOLD


# --- the temperature scale ---------------------------------------------------------------------------------


def _gpu_at(tmp_path: Path, temperature: int, slowdown: object) -> object:
    rec = json.loads(HEALTHY.read_text())
    rec["snapshots"] = rec["snapshots"][:1]
    rec["snapshots"][0]["devices"][0].update(temperature=temperature, temp_slowdown=slowdown)
    path = tmp_path / f"gpu-{temperature}-{str(slowdown).replace('/', '')}.json"
    path.write_text(json.dumps(rec))
    return sample_once(ReplaySource(path))


@pytest.mark.parametrize("offset", [-6, -1, 0, 1, 6])
def test_a_gpu_without_a_slowdown_reads_as_one_at_the_assumed_slowdown(tmp_path, offset):
    """Bar and verdict agree: no reported slowdown behaves as the slowdown the fallback warning implies."""
    settings = HealthSettings()
    temperature = int(settings.temp_fallback_c) + offset
    unknown = _gpu_at(tmp_path, temperature, "n/a")
    assumed = _gpu_at(tmp_path, temperature, int(settings.temp_scale_c(None)))
    assert metric_values(unknown.gpus[0])["temp"] == metric_values(assumed.gpus[0])["temp"]
    status = [evaluate(s, [], settings=settings).gpu(0).status for s in (unknown, assumed)]
    assert status[0] == status[1]


# --- the launch form ---------------------------------------------------------------------------------------


def test_a_blank_form_writes_the_engine_defaults(tmp_path):
    config = load_config(write_config(LaunchRequest(), tmp_path))
    engine = TrainConfig()
    assert (config.model, config.data.cep, config.lora) == (engine.model, engine.data.cep, engine.lora)
    for name in ("max_steps", "max_seq_length", "learning_rate", "batch_size", "epochs"):
        assert getattr(config.train, name) == getattr(engine.train, name), name


def test_a_config_that_leaves_settings_out_fills_the_form_with_the_engine_defaults(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text('name = "short"\n[train]\nmax_steps = 7\n')
    form = LaunchRequest.from_config(path)
    assert form.max_steps == "7"
    assert (form.max_seq_length, form.lora_r) == (LaunchRequest().max_seq_length, LaunchRequest().lora_r)


def test_the_form_offers_every_engine_variant_and_each_is_accepted(tmp_path):
    assert set(prefix.VARIANTS) <= set(CEP_VARIANTS)
    for variant in CEP_VARIANTS:
        assert (
            load_config(write_config(LaunchRequest(name=variant, cep=variant), tmp_path)).data.cep == variant
        )


# --- evaluations -------------------------------------------------------------------------------------------


@given(st.sampled_from(sorted(baselines.TRACK_OF_METRIC)), st.floats(0, 1))
def test_the_evals_marks_follow_the_engine_comparison(metric, figure):
    compared = baselines.compare(baselines.TRACK_OF_METRIC[metric], figure)
    cell = figure_cell(metric, figure).plain
    assert ("▲LLM" in cell) is compared["beats_llm"]
    assert ("▲small" in cell) is (compared["beats_small_model"] and not compared["beats_llm"])


def test_error_counts_are_the_examples_error_categories(tmp_path):
    from cep_core.evaluation.store import iter_examples

    home = tmp_path / "home"
    run_evaluation(home, tmp_path / "work", "both-tracks")
    [row] = load_evaluations(home).rows
    per_example = Counter(e for ex in iter_examples(row.record) for e in ex.get("errors") or [])
    assert row.errors == per_example and sum(row.errors.values()) > 0


# --- layering ----------------------------------------------------------------------------------------------

CONSOLE = Path(__file__).resolve().parents[2] / "cep_console"


def _job_manager_uses(path: Path) -> list[int]:
    """Lines of PATH that import cep_core.jobs.manager or name JobManager."""
    import ast

    def uses(node: ast.AST) -> bool:
        if isinstance(node, ast.ImportFrom):
            return node.module == "cep_core.jobs.manager"
        if isinstance(node, ast.Import):
            return any(a.name == "cep_core.jobs.manager" for a in node.names)
        return "JobManager" in (getattr(node, "id", None), getattr(node, "attr", None))

    return [node.lineno for node in ast.walk(ast.parse(path.read_text(), filename=str(path))) if uses(node)]


def test_job_control_has_one_door_in_the_console():
    """Screens launch, stop and resume through app.jobs (cep_console.job_control); only that module builds
    cep_core's JobManager, so how the console controls jobs is decided in one place."""
    uses = {
        str(path.relative_to(CONSOLE)): lines
        for path in sorted(CONSOLE.rglob("*.py"))
        if (lines := _job_manager_uses(path))
    }
    assert set(uses) == {"job_control.py"}, uses
