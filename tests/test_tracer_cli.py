"""`cep traces …`: what a user types, through the real dispatcher, against a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cep_core.cli import main
from cep_core.tracer import WorkflowTracer
from cep_core.tracer.retrain import prepare_retrain, triggers
from cep_core.tracer.store import TraceStore
from cep_core.tracer.thresholds import DEFAULT_THRESHOLD, AgentKey

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CEP_TRACES_DB", raising=False)
    path = tmp_path / "traces.db"
    tracer = WorkflowTracer(path, strict=True)
    for i in range(12):
        tracer.capture_call(
            "orchestrator",
            "main",
            "gpt-4",
            system_prompt="Route requests.",
            user_query=f"Weather in city {i}?",
            assistant_response=f'<tool_call name="get_weather">{{"city": "C{i}"}}</tool_call>',
            cost=0.01,
            execution_time=0.5 + i / 10,
            tools=[
                {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ],
        )
    for i in range(3):
        tracer.capture_call(
            "extractor",
            "invoice",
            "claude-3-5-sonnet",
            user_query=f"Invoice {i} total 12 EUR",
            assistant_response='{"total": 12}',
            success=i != 0,
            cost=0.002,
            execution_time=0.3,
            error="RateLimitError: 429 Too Many Requests" if i == 0 else None,
        )
    tracer.close()
    return path


def cep(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_stats_json(store_path, capsys):
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "--threshold", "10", "stats", "--json")
    data = json.loads(out)
    assert code == 0 and data["total"] == 15
    groups = {g["agent"]: g for g in data["groups"]}
    assert groups["extractor/invoice"]["success_rate"] == pytest.approx(2 / 3)
    assert groups["orchestrator/main"]["p95_time"] == pytest.approx(1.6)
    agents = {a["agent"]: a for a in data["agents"]}
    assert agents["orchestrator/main"]["ready"] and not agents["extractor/invoice"]["ready"]


def test_stats_table_names_every_agent_and_readiness(store_path, capsys):
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "--threshold", "10", "stats")
    assert code == 0
    assert "orchestrator/main" in out and "extractor/" in out and "12/10" in out and "2/10" in out
    assert "ready for retraining: orchestrator/main" in out


def test_list_filters_and_pages(store_path, capsys, monkeypatch):
    monkeypatch.setenv("CEP_TRACES_DB", str(store_path))
    code, out, _ = cep(capsys, "traces", "list", "--failed", "--json")
    rows = json.loads(out)["rows"]
    assert code == 0 and [r["error"] for r in rows] == ["RateLimitError: 429 Too Many Requests"]
    _, out, _ = cep(capsys, "traces", "list", "--agent", "main", "--limit", "5", "--json")
    first = json.loads(out)
    assert len(first["rows"]) == 5 and {r["agent"] for r in first["rows"]} == {"orchestrator/main"}
    _, out, _ = cep(
        capsys,
        "traces",
        "list",
        "--agent",
        "main",
        "--limit",
        "50",
        "--before",
        first["next_before_id"],
        "--json",
    )
    assert len(json.loads(out)["rows"]) == 7
    _, out, _ = cep(capsys, "traces", "list", "--model", "claude-3-5-sonnet", "--since", "1h", "--json")
    assert len(json.loads(out)["rows"]) == 3
    code, out, _ = cep(capsys, "traces", "list", "--limit", "3")
    assert code == 0 and "more: add --before" in out and "extractor" in out and "Invoice 2" in out


def test_search_and_show(store_path, capsys):
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "search", "city 7", "--json")
    [hit] = json.loads(out)["rows"]
    assert code == 0 and hit["query_preview"] == "Weather in city 7?"
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "show", hit["id"])
    assert code == 0 and "Weather in city 7?" in out and '<tool_call name="get_weather">{"city": "C7"}' in out
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "show", hit["id"], "--json")
    assert json.loads(out)["tools"][0]["name"] == "get_weather"


def test_user_errors_name_the_problem(store_path, tmp_path, capsys):
    code, _, err = cep(capsys, "traces", "--traces", str(tmp_path / "missing.db"), "list")
    assert code == 2 and "missing.db" in err and "no trace store" in err
    assert not (tmp_path / "missing.db").exists()
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database, just notes " * 50)
    code, _, err = cep(capsys, "traces", "--traces", str(garbage), "list")
    assert code == 2 and "notes.txt" in err and "cannot open the trace store" in err
    assert garbage.read_text().startswith("not a database")  # nothing overwritten
    code, _, err = cep(capsys, "traces", "--traces", str(store_path), "show", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert code == 2 and "no trace with id" in err
    code, _, err = cep(capsys, "traces", "--traces", str(store_path), "list", "--since", "last tuesday")
    assert code == 2 and "--since" in err and "not a time" in err
    code, _, err = cep(capsys, "traces", "--traces", str(store_path), "export", "--agent", "nobody")
    assert code == 2 and "orchestrator/main" in err  # lists the agents that exist
    code, _, err = cep(capsys, "traces", "--traces", str(store_path), "retrain", "orchestrator/main")
    assert code == 2 and f"threshold is {DEFAULT_THRESHOLD}" in err and "--force" in err


def test_export_writes_hermes_jsonl(store_path, tmp_path, capsys):
    out_dir = tmp_path / "export"
    code, out, _ = cep(
        capsys,
        "traces",
        "--traces",
        str(store_path),
        "export",
        "--agent",
        "orchestrator/main",
        "--out",
        str(out_dir),
        "--holdout",
        "0",
        "--json",
    )
    result = json.loads(out)
    assert code == 0 and result["train"] == 12 and result["holdout"] == 0
    rows = [json.loads(line) for line in (out_dir / "train.jsonl").read_text().splitlines()]
    assert all(r["conversations"][-1]["value"].startswith('<tool_call name="get_weather">') for r in rows)
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "stats", "--json")
    agents = {a["agent"]: a for a in json.loads(out)["agents"]}
    assert (
        agents["orchestrator/main"]["new_examples"] == 0 and agents["extractor/invoice"]["new_examples"] == 2
    )


def test_export_without_watermark_leaves_counts(store_path, tmp_path, capsys):
    code, out, _ = cep(
        capsys,
        "traces",
        "--traces",
        str(store_path),
        "export",
        "--out",
        str(tmp_path / "peek"),
        "--no-watermark",
    )
    assert code == 0 and "training and" in out
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "stats", "--json")
    assert {a["agent"]: a["new_examples"] for a in json.loads(out)["agents"]} == {
        "extractor/invoice": 2,
        "orchestrator/main": 12,
    }


def test_retrain_exports_writes_a_config_and_records_the_trigger(store_path, tmp_path, capsys):
    out_dir = tmp_path / "retrain"
    code, out, _ = cep(
        capsys,
        "traces",
        "--traces",
        str(store_path),
        "--threshold",
        "10",
        "retrain",
        "main",
        "--out",
        str(out_dir),
        "--no-launch",
    )
    assert code == 0
    config_path = out_dir / "run.toml"
    assert f"cep train {config_path}" in out
    config = tomllib.loads(config_path.read_text())
    assert config["model"] == "builtin:tiny" and config["data"]["cep"] == "toolcall"
    assert config["data"]["sources"] == [str((out_dir / "data" / "train.jsonl").resolve())]
    assert "12 exported example(s)" in config_path.read_text()
    # The training job's own validator accepts it (unknown keys would be errors there).
    from cep_core.training.config import load_config

    loaded = load_config(config_path)
    assert loaded.model == "builtin:tiny" and loaded.data.tool_format == "target" and loaded.lora.r == 16
    from cep_core.data.prepare import prepare
    from cep_core.prompts.prefix import get_cep

    prepared = prepare(loaded.data.sources, cep=get_cep("toolcall"), holdout_fraction=0.0)
    exported = len((out_dir / "data" / "train.jsonl").read_text().splitlines())
    assert len(prepared.train) == exported and not prepared.skipped  # the training loader takes every row
    [trigger] = triggers(TraceStore(store_path))
    assert (trigger["agent_name"], trigger["status"], trigger["examples"]) == ("main", "exported", 12)
    # The export moved the watermark: the agent is no longer ready.
    code, _, err = cep(capsys, "traces", "--traces", str(store_path), "--threshold", "10", "retrain", "main")
    assert code == 2 and "0 new successful example(s)" in err
    code, out, _ = cep(capsys, "traces", "--traces", str(store_path), "triggers", "--json")
    assert json.loads(out)[0]["config"] == str(config_path)


def test_a_launcher_plugs_in_and_its_outcome_is_recorded(store_path, tmp_path):
    store = TraceStore(store_path)
    launched: list[Path] = []

    def launch(config: Path) -> str:
        launched.append(config)
        return "job-42"

    result = prepare_retrain(
        store, AgentKey("orchestrator", "main"), out_dir=tmp_path / "r1", threshold=10, launch=launch
    )
    assert launched == [result.config_path] and result.status == "launched" and result.launch_ref == "job-42"

    def failing(config: Path) -> str:
        raise RuntimeError("no GPU")

    with pytest.raises(RuntimeError, match="no GPU"):
        prepare_retrain(
            store, AgentKey("orchestrator", "main"), out_dir=tmp_path / "r2", force=True, launch=failing
        )
    assert [t["status"] for t in triggers(store)] == ["launch_failed", "launched"]


def test_a_user_template_with_a_bad_placeholder_is_reported(store_path, tmp_path, capsys):
    template = tmp_path / "mine.toml"
    template.write_text("[model]\nname = $model\n[data]\ntrain = $nope\n")
    code, _, err = cep(
        capsys,
        "traces",
        "--traces",
        str(store_path),
        "retrain",
        "main",
        "--force",
        "--template",
        str(template),
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 2 and "mine.toml" in err and "nope" in err


def test_the_installed_command_runs_as_a_subprocess(store_path):
    env = dict(os.environ, CEP_TRACES_DB=str(store_path), COLUMNS="120")
    out = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "traces", "search", "RateLimitError"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Invoice 0 total 12 EUR" in out.stdout and "RateLimitError" in out.stdout


def test_retrain_launches_the_training_job_through_the_jobs_layer(store_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    code, out, _ = cep(
        capsys,
        "traces",
        "--traces",
        str(store_path),
        "--threshold",
        "10",
        "retrain",
        "main",
        "--out",
        str(tmp_path / "retrain"),
    )
    assert code == 0 and "launched job" in out
    from cep_core.jobs.manager import JobManager

    manager = JobManager()
    [job] = manager.registry.list()
    assert job.kind == "train" and job.name == "retrain-orchestrator-main" and job.state == "running"
    assert Path(job.run_dir, "run.toml").read_text() == (tmp_path / "retrain" / "run.toml").read_text()
    [trigger] = triggers(TraceStore(store_path))
    assert (trigger["status"], trigger["launch_ref"]) == ("launched", job.id)
    assert manager.stop(job.id, grace_s=30).state == "stopped"
