"""`cep score`, `cep prefix` and `cep demo` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cep_core.data.bfcl import gold_calls, load_bfcl
from cep_core.formats.toolcalls import render_target

SAMPLES = Path(__file__).resolve().parents[1] / "cep_core" / "data" / "samples"
BFCL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bfcl"


def cep(*args, stdin=None, home=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "120"}
    if home:
        env["CEP_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cep_core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_demo_toolcall_writes_results_and_examples(tmp_path):
    out = tmp_path / "scored"
    proc = cep(
        "score",
        "--dataset",
        str(SAMPLES / "demo_toolcall.jsonl"),
        "--predictions",
        str(SAMPLES / "demo_toolcall_predictions.jsonl"),
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert "toolcall_f1" in proc.stdout and "vs LLM" in proc.stdout and "self_closing_tag" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    for key in (
        "n",
        "accuracy",
        "f1",
        "precision",
        "recall",
        "argument_f1",
        "format_compliance",
        "errors",
        "baseline",
    ):
        assert key in results
    assert results["n"] == 12
    assert (
        results["schema_version"] == 2 and results["versions"]["cep"] and results["created_at"].endswith("Z")
    )
    examples = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert len(examples) == 12
    first = examples[0]
    assert set(first) >= {"id", "correct", "f1", "errors", "calls"}
    assert first["calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}] and first["correct"]
    by_id = {e["id"]: e for e in examples}
    assert by_id["weather-two-cities"]["errors"][:1] == ["self_closing_tag"]
    assert "arguments_attribute" in by_id["flight-attr"]["errors"]
    assert "param_name_mismatch" in by_id["ticket-names"]["errors"]
    assert "markdown_wrapper" in by_id["flight-lisbon"]["errors"]


def test_score_json_to_stdout_structured(tmp_path):
    proc = cep(
        "score",
        "--track",
        "structured",
        "--dataset",
        str(SAMPLES / "demo_structured.jsonl"),
        "--predictions",
        str(SAMPLES / "demo_structured_predictions.jsonl"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert results["track"] == "structured" and results["n"] == 8
    assert results["errors"]["markdown_wrapper"] == 1
    assert results["baseline"]["metric"] == "structured_f1"


@pytest.mark.skipif(not BFCL.is_dir(), reason="../shared/data/bfcl is absent")
def test_score_bfcl_file_gold_is_perfect_and_missing_predictions_are_reported(tmp_path):
    question = BFCL / "BFCL_v4_simple_python.json"
    entries = load_bfcl(question)
    preds = write_jsonl(
        tmp_path / "preds.jsonl", [{"id": e.id, "output": render_target(gold_calls(e))} for e in entries[:-2]]
    )
    proc = cep("score", "--dataset", str(question), "--predictions", str(preds), "--json")
    assert proc.returncode == 0
    results = json.loads(proc.stdout)
    assert results["n"] == 400 and results["missing_predictions"] == 2
    assert results["accuracy"] == pytest.approx(398 / 400)
    assert entries[-1].id in results["missing_ids"]
    assert "2 example(s) had no prediction" in proc.stderr


def test_malformed_prediction_line_names_file_and_line(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "weather-paris", "output": ""}\n{"id": "flight-attr", "output": \n')
    proc = cep("score", "--dataset", str(SAMPLES / "demo_toolcall.jsonl"), "--predictions", str(preds))
    assert proc.returncode == 2
    assert f"{preds}:2" in proc.stderr and "malformed JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_id_and_wrong_type_name_the_line(tmp_path):
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "weather-paris", "output": ""}, {"id": "nope", "output": ""}]
    )
    proc = cep("score", "--dataset", str(SAMPLES / "demo_toolcall.jsonl"), "--predictions", str(preds))
    assert proc.returncode == 2 and f"{preds}:2" in proc.stderr and "unknown id 'nope'" in proc.stderr
    preds = write_jsonl(tmp_path / "q.jsonl", [{"id": "weather-paris", "output": {"text": "x"}}])
    proc = cep("score", "--dataset", str(SAMPLES / "demo_toolcall.jsonl"), "--predictions", str(preds))
    assert proc.returncode == 2 and "'output'" in proc.stderr and f"{preds}:1" in proc.stderr


def test_unreadable_dataset_and_bad_eval_rows(tmp_path):
    proc = cep(
        "score", "--dataset", str(tmp_path / "missing.jsonl"), "--predictions", str(tmp_path / "p.jsonl")
    )
    assert proc.returncode == 2 and "missing.jsonl: no such file" in proc.stderr
    data = write_jsonl(
        tmp_path / "set.jsonl",
        [
            {
                "id": "a",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [],
                "expected_calls": [{"arguments": {}}],
            }
        ],
    )
    proc = cep("score", "--dataset", str(data), "--predictions", str(data))
    assert (
        proc.returncode == 2
        and f"{data}:1" in proc.stderr
        and "expected_calls[0] needs a 'name'" in proc.stderr
    )
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = write_jsonl(tmp_path / "locked.jsonl", [])
        locked.chmod(0)
        proc = cep("score", "--dataset", str(SAMPLES / "demo_toolcall.jsonl"), "--predictions", str(locked))
        assert proc.returncode == 2 and "cannot read" in proc.stderr


def test_duplicate_prediction_ids_are_rejected(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "weather-paris", "output": ""}] * 2)
    proc = cep("score", "--dataset", str(SAMPLES / "demo_toolcall.jsonl"), "--predictions", str(preds))
    assert proc.returncode == 2 and "duplicate id 'weather-paris' (first on line 1)" in proc.stderr


def test_prefix_commands():
    listed = json.loads(cep("prefix", "list", "--json").stdout)
    assert [row["name"] for row in listed] == ["universal", "compact", "structured", "toolcall"]
    shown = cep("prefix", "show", "toolcall").stdout
    assert shown.startswith("<|formatting_rules|>")
    applied = cep("prefix", "apply", "compact", stdin=json.dumps([{"role": "user", "content": "hi"}]))
    messages = json.loads(applied.stdout)
    assert messages[0]["role"] == "system" and messages[0]["content"].startswith("<|formatting_rules|>")
    bad = cep("prefix", "apply", "compact", stdin="not json")
    assert bad.returncode == 2 and "<stdin>" in bad.stderr


def test_demo_runs_on_embedded_defaults(tmp_path):
    proc = cep("demo", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert "toolcall track" in proc.stdout and "structured track" in proc.stdout
    assert "universal" in proc.stdout


def test_cli_does_not_import_the_ml_stack():
    code = (
        "import sys, cep_core.cli as c; c.build_parser(); "
        "print([m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
