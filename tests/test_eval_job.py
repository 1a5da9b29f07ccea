"""The evaluation job end to end with the predictions backend: its files, progress events, cep.db row, the
store API the console uses, `cep eval compare/show`, failures, and a real job through the jobs layer."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from cep_core.cli import main as cep
from cep_core.evaluation import store
from cep_core.evaluation.job import run_evaluation
from cep_core.runs import read_progress, run_status
from cep_core.store.state import open_state

SAMPLES = Path(__file__).resolve().parents[1] / "cep_core" / "data" / "samples"


@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "home"
    monkeypatch.setenv("CEP_HOME", str(path))
    return path


def write_config(path: Path, name: str = "demo", extra: str = "", predictions: str | None = None) -> Path:
    preds = path.parent / f"{name}-preds.jsonl"
    if predictions is None:
        preds.write_text(
            (SAMPLES / "demo_toolcall_predictions.jsonl").read_text()
            + (SAMPLES / "demo_structured_predictions.jsonl").read_text()
        )
    else:
        preds.write_text(predictions)
    path.write_text(
        f'name = "{name}"\nbackend = "predictions"\n{extra}\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_structured.jsonl"}"\n'
        f'[predictions]\npath = "{preds}"\n'
    )
    return path


def perfect_predictions() -> str:
    """Outputs that are exactly right: the expected calls and the expected JSON."""
    from cep_core.formats.toolcalls import ToolCall, render_target

    lines = []
    for line in (SAMPLES / "demo_toolcall.jsonl").read_text().splitlines():
        row = json.loads(line)
        calls = [ToolCall(c["name"], c.get("arguments", {})) for c in row["expected_calls"]]
        lines.append({"id": row["id"], "output": render_target(calls) if calls else "No tool fits."})
    for line in (SAMPLES / "demo_structured.jsonl").read_text().splitlines():
        row = json.loads(line)
        lines.append({"id": row["id"], "output": json.dumps(row["expected"])})
    return "".join(json.dumps(x) + "\n" for x in lines)


def test_cep_eval_writes_files_events_and_a_row(home, tmp_path, capsys):
    config = write_config(tmp_path / "eval.toml", extra='cep = "compact"')
    assert cep(["eval", str(config), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    (record,) = store.list_evaluations(home)
    eval_dir = Path(record.eval_dir)
    assert {p.name for p in eval_dir.iterdir()} == {"predictions.jsonl", "examples.jsonl", "results.json"}
    assert json.loads((eval_dir / "results.json").read_text()) == results

    for track, n in (("toolcall", 12), ("structured", 8)):
        figures = results["tracks"][track]
        assert figures["n"] == n
        for key in ("accuracy", "f1", "precision", "recall", "format_compliance", "errors", "baseline"):
            assert key in figures
        assert figures["cep_variant"] == "compact" and len(figures["cep_sha256"]) == 64
        assert [s["track"] for s in figures["data_spec"]] == [track]
        assert figures["baseline"]["delta_llm"] == pytest.approx(
            figures["f1"]["macro"] - figures["baseline"]["llm"]
        )
    assert "argument_f1" in results["tracks"]["toolcall"]
    # What made it and when: versions read from the installed packages, a schema version, ISO times (UTC).
    from importlib import metadata

    import cep_core

    assert results["schema_version"] == 2
    versions = results["versions"]
    assert versions["cep"] == cep_core.__version__
    for package in ("torch", "transformers", "peft"):
        assert versions[package] == metadata.version(package)
    for key in ("created", "finished"):
        stamp = dt.datetime.strptime(results[f"{key}_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        assert abs(stamp.timestamp() - results[key]) < 1
    # The sample predictions are those `cep score` scores: the same figures through both paths.
    assert (
        cep(
            [
                "score",
                "--dataset",
                str(SAMPLES / "demo_toolcall.jsonl"),
                "--predictions",
                str(SAMPLES / "demo_toolcall_predictions.jsonl"),
                "--json",
            ]
        )
        == 0
    )
    scored = json.loads(capsys.readouterr().out)
    assert scored["f1"] == results["tracks"]["toolcall"]["f1"]
    assert scored["errors"] == results["tracks"]["toolcall"]["errors"]

    events = read_progress(record.run_dir)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-2:] == ["eval", "end"] and "step" in kinds
    assert events[0]["total_steps"] == 20 and events[0]["cep_variant"] == "compact"
    assert [e for e in events if e["event"] == "step"][-1]["step"] == 20
    assert events[-1]["status"] == "completed"
    assert events[-2]["metrics"]["toolcall_f1"] == results["tracks"]["toolcall"]["f1"]["macro"]
    assert run_status(record.run_dir) == "completed"

    assert record.state == "completed" and record.backend == "predictions"
    assert record.cep_variant == "compact" and record.cep_sha256 == results["cep"]["sha256"]
    assert record.toolcall_n == 12 and record.structured_n == 8 and record.n == 20
    assert record.toolcall_f1 == results["tracks"]["toolcall"]["f1"]["macro"]
    assert record.structured_f1 == results["tracks"]["structured"]["f1"]["macro"]
    expected_compliance = (
        12 * results["tracks"]["toolcall"]["format_compliance"]
        + 8 * results["tracks"]["structured"]["format_compliance"]
    ) / 20
    assert record.format_compliance == pytest.approx(expected_compliance)
    assert [s["source"] for s in record.data_spec] == [
        str(SAMPLES / "demo_toolcall.jsonl"),
        str(SAMPLES / "demo_structured.jsonl"),
    ]
    assert store.load_results(record) == results


def test_worst_examples_lowest_f1_first_then_most_errors(home, tmp_path):
    cep(["eval", str(write_config(tmp_path / "eval.toml")), "--json"])
    (record,) = store.list_evaluations(home)
    worst = store.worst_examples(record, "toolcall", 12)
    assert len(worst) == 12
    keys = [(w["f1"], -len(w["errors"])) for w in worst]
    assert keys == sorted(keys)
    first = worst[0]
    assert set(first) >= {"id", "prompt", "expected", "output", "errors", "f1"}
    assert first["f1"] == 0.0 and first["errors"]
    assert first["prompt"][0]["role"] == "system" and "<tools>" in first["prompt"][0]["content"]
    assert isinstance(first["output"], str)
    assert (
        store.worst_examples(record, "structured", 3)[0]["f1"]
        <= store.worst_examples(record, "structured", 8)[-1]["f1"]
    )
    assert len(store.worst_examples(record, "structured", 3)) == 3


def test_compare_lists_newest_first_and_marks_what_beats_the_bar(home, tmp_path, capsys):
    cep(["eval", str(write_config(tmp_path / "a.toml", name="samples")), "--json"])
    time.sleep(0.01)
    cep(
        [
            "eval",
            str(write_config(tmp_path / "b.toml", name="perfect", predictions=perfect_predictions())),
            "--json",
        ]
    )
    capsys.readouterr()
    records = store.list_evaluations(home)
    assert [r.name for r in records] == ["perfect", "samples"]
    assert records[0].toolcall_f1 == 1.0 and records[0].structured_f1 == 1.0

    assert cep(["eval", "compare", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baselines"]["llm"] == {"structured_f1": 0.6, "toolcall_f1": 0.74}
    by_name = {e["name"]: e for e in data["evaluations"]}
    assert by_name["perfect"]["beats_llm"] == {"structured_f1": True, "toolcall_f1": True}
    samples = by_name["samples"]
    assert samples["beats_llm"]["toolcall_f1"] is (samples["toolcall_f1"] > 0.74)

    assert cep(["eval", "compare", records[1].id]) == 0
    text = capsys.readouterr().out
    assert "LLM baseline" in text and "74.0%" in text and "earlier small model" in text
    assert cep(["eval", "compare", records[0].id]) == 0
    assert text.count("✓") < capsys.readouterr().out.count("✓")


def test_compare_shows_name_and_short_id_unbroken_at_80_columns(home, tmp_path, capsys, monkeypatch):
    """Ids were folded mid-word (`20261125-203819-r2-fal` / `se-6761`); the row shows the name and the id's
    short tail on one line, and the short id is accepted wherever an id is."""
    monkeypatch.setenv("COLUMNS", "80")
    name = "a-rather-long-evaluation-name-for-a-narrow-terminal"
    cep(["eval", str(write_config(tmp_path / "a.toml", name=name)), "--json"])
    capsys.readouterr()
    (record,) = store.list_evaluations(home)
    assert cep(["eval", "compare"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if "a-rather-long" in line)
    assert max(len(line) for line in lines) <= 80
    assert f"a-rather-long-evaluatio… {record.short_id} " in row
    assert not any(record.id[:15] in line for line in lines)  # no date-stamped id to fold
    short = next(line for line in lines if record.short_id in line)
    assert short == row
    assert store.get_evaluation(record.short_id).id == record.id
    assert cep(["eval", "show", record.short_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["evaluation"]["id"] == record.id


def test_show_prints_the_worst_examples(home, tmp_path, capsys):
    cep(["eval", str(write_config(tmp_path / "eval.toml")), "--json"])
    capsys.readouterr()
    (record,) = store.list_evaluations(home)
    assert cep(["eval", "show", record.id[:20], "--track", "toolcall", "-n", "2"]) == 0
    text = capsys.readouterr().out
    worst = store.worst_examples(record, "toolcall", 2)
    for item in worst:
        assert item["id"] in text
    assert "expected" in text and "errors" in text and worst[0]["errors"][0] in text
    assert cep(["eval", "show", record.id, "--json", "-n", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["worst"]) == {"toolcall", "structured"}
    assert cep(["eval", "show", "no-such-eval"]) == 2
    assert "no evaluation 'no-such-eval'" in capsys.readouterr().err


def test_cep_eval_scores_bfcl_sets_on_a_clone_without_shared_data(home, tmp_path, monkeypatch, capsys):
    """A user's clone: no ../shared (CEP_SHARED_DATA names an empty folder), no CEP_BFCL_DIR; the BFCL files
    come from the bfcl-eval package `make` installs. Gold outputs of the first entries score 1."""
    from cep_core.data import bfcl
    from cep_core.evaluation.sets import bfcl_package_data
    from cep_core.formats.toolcalls import render_target

    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("CEP_SHARED_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv("CEP_BFCL_DIR", raising=False)
    entries = bfcl.load_bfcl(bfcl_package_data() / "BFCL_v4_simple_python.json")[:400]
    preds = tmp_path / "gold.jsonl"
    preds.write_text(
        "".join(json.dumps({"id": e.id, "output": render_target(bfcl.gold_calls(e))}) + "\n" for e in entries)
    )
    config = tmp_path / "bfcl.toml"
    config.write_text(
        'name = "clone"\nbackend = "predictions"\n[[sets]]\nsource = "bfcl:simple_python"\nsample = 8\n'
        f'[predictions]\npath = "{preds}"\n'
    )
    assert cep(["eval", str(config), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    figures = results["tracks"]["toolcall"]
    assert figures["n"] == 8 and figures["f1"]["macro"] == 1.0
    assert results["data_spec"][0]["data_dir"].endswith("bfcl_eval/data")


def test_a_bad_config_fails_with_a_config_error_event(home, tmp_path, monkeypatch):
    (tmp_path / "p.jsonl").write_text("")
    path = tmp_path / "bad.toml"
    path.write_text(
        'backend = "predictions"\n[[sets]]\nsource = "bfcl-json:parallel"\n'
        f'[predictions]\npath = "{tmp_path / "p.jsonl"}"\n'
    )
    assert cep(["eval", str(path)]) == 2
    (run_dir,) = (home / "runs").iterdir()
    events = read_progress(run_dir)
    assert events[-1]["event"] == "error" and events[-1]["kind"] in ("config", "data")
    assert "simple categories only" in events[-1]["message"]
    assert run_status(run_dir) == "failed"
    assert store.list_evaluations(home) == []  # it never started: no row


def test_an_unknown_config_key_is_refused_before_a_run_exists(home, tmp_path, capsys):
    path = write_config(tmp_path / "eval.toml", extra="batch = 3")
    assert cep(["eval", str(path)]) == 2
    assert "batch" in capsys.readouterr().err
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_evaluating_a_training_run_writes_under_its_evals_and_logs_the_figures_there(home, tmp_path):
    # A training run directory as the training job leaves it (run.toml); its base model is not needed by the
    # predictions backend, and use_adapter = false asks for no adapter.
    from cep_core.runs import create_run_dir
    from cep_core.training.config import TrainConfig, write_run_toml

    training = create_run_dir("trained", home)
    write_run_toml(TrainConfig(name="trained"), training.run_toml)
    config = write_config(tmp_path / "eval.toml", extra=f'run = "{training.root.name}"\nuse_adapter = false')
    assert cep(["eval", str(config), "--json"]) == 0
    (record,) = store.list_evaluations(home)
    assert Path(record.eval_dir).parent == training.evals
    assert record.training_run == str(training.root)
    assert record.cep_variant == "universal"  # the run's CEP, since the eval config named none
    (event,) = [e for e in read_progress(training.root) if e["event"] == "eval"]
    assert event["metrics"]["eval_id"] == record.id
    assert run_status(training.root) == "pending"  # an eval does not change what the run's log says about it

    with_adapter = write_config(
        tmp_path / "eval2.toml", name="needs-adapter", extra=f'run = "{training.root}"'
    )
    assert cep(["eval", str(with_adapter)]) == 2


def test_the_jobs_layer_runs_an_evaluation_as_a_subprocess(home, tmp_path):
    from cep_core.jobs.manager import JobManager

    manager = JobManager(home=home)
    job = manager.start_config(write_config(tmp_path / "eval.toml"), kind="eval")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = manager.refresh(manager.registry.get(job.id))
        if job.state not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert job.state == "succeeded", (job.reason, (Path(job.run_dir) / "stdout.log").read_text())
    (record,) = store.list_evaluations(home)
    assert record.run_dir == job.run_dir and record.state == "completed"
    assert (Path(record.eval_dir) / "results.json").is_file()


def test_the_migration_creates_the_evaluations_table(tmp_path):
    db = open_state(tmp_path / "h")
    try:
        columns = {c.name for c in db["evaluations"].columns}
    finally:
        db.conn.close()
    assert {
        "id",
        "run_dir",
        "eval_dir",
        "created",
        "model",
        "adapter",
        "backend",
        "cep_variant",
        "cep_sha256",
        "data_spec",
        "state",
        "structured_f1",
        "toolcall_f1",
        "format_compliance",
        "n",
    } <= columns


def test_run_evaluation_stops_cleanly_when_asked(home, tmp_path):
    from cep_core.evaluation.config import load_eval_config, to_toml
    from cep_core.runs import create_run_dir

    paths = create_run_dir("stop", home)
    paths.run_toml.write_text(to_toml(load_eval_config(write_config(tmp_path / "eval.toml"))))
    code, results = run_evaluation(paths.root, home, should_stop=lambda: True)
    # The predictions backend answers everything at once, so a stop request after it is too late to matter.
    assert code == 0 and results is not None


def test_cep_eval_detach_starts_a_job_that_completes(home, tmp_path, capsys):
    from cep_core.jobs.manager import JobManager

    assert cep(["eval", str(write_config(tmp_path / "eval.toml")), "--detach", "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    manager = JobManager(home=home)
    deadline = time.monotonic() + 120
    job = manager.registry.get(started["job_id"])
    while job.state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = manager.refresh(manager.registry.get(job.id))
    assert job.state == "succeeded" and job.kind == "eval"
    assert job.run_dir == started["run_dir"]
    (record,) = store.list_evaluations(home)
    assert record.state == "completed" and record.run_dir == started["run_dir"]


def test_the_cli_and_the_store_never_import_the_heavy_libraries():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import cep_core.cli, cep_core.evaluation.store, cep_core.evaluation.job, cep_core.evaluation.sets\n"
        "import cep_core.evaluation.backends.openai, cep_core.evaluation.backends.predictions\n"
        "cep_core.cli.build_parser()\n"
        "print(sorted({'torch', 'transformers', 'peft', 'datasets'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_show_never_sends_control_characters_from_model_output_to_the_terminal(home, tmp_path, capsys):
    hostile = "\x1b[2J\x1b]0;pwned\x07<tool_call name=\x00x>{}</tool_call>\x9b31m"
    lines = "".join(
        json.dumps({"id": json.loads(line)["id"], "output": hostile}) + "\n"
        for line in (SAMPLES / "demo_toolcall.jsonl").read_text().splitlines()
    )
    cep(["eval", str(write_config(tmp_path / "eval.toml", predictions=lines)), "--json"])
    capsys.readouterr()
    assert cep(["eval", "show", "demo", "--track", "toolcall", "-n", "3"]) == 0
    text = capsys.readouterr().out
    assert "\\x1b[2J" in text
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in text)
