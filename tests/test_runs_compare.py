"""`cep runs compare`: two training runs side by side (settings, losses, throughput, evaluations) and their loss
curves on one chart, through the real command. The runs are run directories as the training job leaves them
(its resolved run.toml, progress.jsonl written through the job's ProgressWriter); one is evaluated by a real
evaluation job (predictions backend), whose `eval` event marks the chart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cep_core.runs import ProgressWriter, create_run_dir
from cep_core.runs.summary import loss_curve, resolve_run, summarize_run
from cep_core.training.config import TrainConfig, to_toml

SAMPLES = Path(__file__).resolve().parents[1] / "cep_core" / "data" / "samples"


def training_run(home: Path, name: str, losses: list[float], r: int, lr: float) -> Path:
    paths = create_run_dir(name, home)
    config = TrainConfig(name=name, model="builtin:tiny")
    config.lora.r, config.lora.alpha, config.train.learning_rate = r, 2 * r, lr
    config.data.cep = "compact"
    paths.run_toml.write_text(to_toml(config))
    writer = ProgressWriter(paths.progress)
    writer.emit("start", total_steps=len(losses), world_size=1, model="builtin:tiny", resumed_from=None)
    for step, loss in enumerate(losses, 1):
        writer.emit("step", step=step, total_steps=len(losses), loss=loss, tokens_per_s=1000.0 * r)
    writer.emit("end", status="completed", step=len(losses))
    return paths.root


def cep(*argv: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100", "HF_HUB_OFFLINE": "1"},
    )


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CEP_HOME", str(home))
    a = training_run(home, "wide", [7.12, 7.08, 7.05, 7.03, 7.00], r=64, lr=1e-2)
    b = training_run(home, "narrow", [7.10, 7.09, 7.08], r=8, lr=2e-4)
    # A real evaluation of run a (its base: no adapter needed by the predictions backend).
    preds = tmp_path / "preds.jsonl"
    preds.write_text((SAMPLES / "demo_toolcall_predictions.jsonl").read_text())
    config = tmp_path / "eval.toml"
    config.write_text(
        f'name = "wide-eval"\nbackend = "predictions"\nrun = "{a}"\nuse_adapter = false\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\n[predictions]\npath = "{preds}"\n'
    )
    r = cep("eval", str(config), home=home)
    assert r.returncode == 0, r.stderr
    return home, a, b


def test_summaries_read_settings_losses_and_the_runs_evaluations(two_runs):
    home, a, b = two_runs
    wide, narrow = summarize_run(a, home), summarize_run(b, home)
    assert (wide.name, wide.lora_r, wide.lora_alpha, wide.learning_rate, wide.cep) == (
        "wide",
        64,
        128,
        1e-2,
        "compact",
    )
    assert (wide.first_loss, wide.final_loss, wide.min_loss, wide.step, wide.status) == (
        7.12,
        7.0,
        7.0,
        5,
        "completed",
    )
    assert narrow.final_loss == 7.08 and narrow.tokens_per_s == 8000.0
    (evaluation,) = wide.evaluations
    assert evaluation["name"] == "wide-eval" and evaluation["toolcall_f1"] == 0.625
    assert narrow.evaluations == []
    curve = loss_curve(a)
    assert curve.steps == [1, 2, 3, 4, 5] and curve.losses[-1] == 7.0
    (point,) = curve.evals
    assert point.step is None and point.label() == "tool F1 0.62"
    assert resolve_run(a.name[:-2], home) == a and resolve_run(str(b), home) == b
    from cep_core.jobs.backend import LaunchSpec
    from cep_core.jobs.registry import Registry

    spec = LaunchSpec(job_id="j-compare-1", kind="train", run_dir=a, command=["true"], name="wide")
    Registry(home).create(spec, "local")
    assert resolve_run("j-compare-1", home) == a  # a job id, as `cep jobs list` shows it


def test_cep_runs_compare_prints_both_runs_and_one_chart(two_runs):
    home, a, b = two_runs
    r = cep("runs", "compare", a.name, b.name, "--chart", "--width", "90", home=home)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "runs side by side" in out and a.name in out and b.name in out
    row = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    assert "64 / 128" in row["LoRA r / alpha"] and "8 / 16" in row["LoRA r / alpha"]
    assert "7.0000" in row["final loss"] and "7.0800" in row["final loss"]
    assert "0.625" in row["toolcall F1"] and "5/5" in row["steps"] and "3/3" in row["steps"]
    chart = out[out.index("training loss") :]
    assert "\x1b[" not in chart  # not a terminal: no colour codes
    for label in ("wide", "narrow", "step", "7.12", "7.00", "tool F1 0.62"):  # axes with numbers, the eval
        assert label in chart, label
    assert max(len(line) for line in chart.splitlines()) <= 90


def test_compare_json_and_errors(two_runs):
    home, a, b = two_runs
    r = cep("runs", "compare", a.name, b.name, "--json", home=home)
    runs = json.loads(r.stdout)["runs"]
    assert [x["name"] for x in runs] == ["wide", "narrow"] and runs[0]["evaluations"][0][
        "toolcall_f1"
    ] == 0.625
    r = cep("runs", "compare", a.name, home=home)
    assert r.returncode == 2 and "at least two runs" in r.stderr
    r = cep("runs", "compare", a.name, "no-such-run", home=home)
    assert r.returncode == 2 and "no training run 'no-such-run'" in r.stderr
    r = cep("runs", "compare", a.name, b.name, home=home)  # not a terminal: the table only
    assert "training loss" not in r.stdout and "final loss" in r.stdout
