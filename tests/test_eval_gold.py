"""Scoring BFCL's gold answers through the evaluation job (the predictions backend) gives 100% on every
category with answers; the only failures are the entries BFCL's own checker cannot pass (bfcl.UNSATISFIABLE)."""

from __future__ import annotations

import json

import pytest

from cep_core.cli import main as cep
from cep_core.data import bfcl
from cep_core.formats.toolcalls import ToolCall, render_target

ANSWER_CATEGORIES = list(bfcl.ANSWER_CATEGORIES)
NO_CALL_CATEGORIES = ["irrelevance", "live_irrelevance"]
STRUCTURED_CATEGORIES = ["simple_python", "live_simple"]


def _gold_output(entry: bfcl.BfclEntry) -> str:
    if entry.category == "live_relevance":  # right answer: some call
        return render_target([ToolCall(entry.functions[0]["name"], {})])
    if entry.ground_truth is None:  # irrelevance: no call is right
        return "None of the functions fits this request."
    return render_target(bfcl.gold_calls(entry))


def test_gold_answers_score_100_percent_on_every_bfcl_category(shared_data, tmp_path, monkeypatch, capsys):
    bfcl_dir = shared_data / "bfcl"
    monkeypatch.setenv("CEP_BFCL_DIR", str(bfcl_dir))
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    categories = ANSWER_CATEGORIES + NO_CALL_CATEGORIES + ["live_relevance"]
    with (tmp_path / "gold.jsonl").open("w") as handle:
        for category in categories:
            for entry in bfcl.load_bfcl(bfcl_dir / f"BFCL_v4_{category}.json"):
                handle.write(json.dumps({"id": entry.id, "output": _gold_output(entry)}) + "\n")
                if category in STRUCTURED_CATEGORIES:
                    args = bfcl.gold_calls(entry)[0].arguments
                    handle.write(json.dumps({"id": f"json:{entry.id}", "output": json.dumps(args)}) + "\n")
    (tmp_path / "gold.toml").write_text(
        'name = "gold"\nbackend = "predictions"\n'
        f'[[sets]]\nsource = "bfcl:{",".join(categories)}"\n'
        f'[[sets]]\nsource = "bfcl-json:{",".join(STRUCTURED_CATEGORIES)}"\n'
        '[predictions]\npath = "gold.jsonl"\n'
    )
    assert cep(["eval", str(tmp_path / "gold.toml"), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)

    toolcall = results["tracks"]["toolcall"]
    unsatisfiable = {i for i in bfcl.UNSATISFIABLE}
    expected_n = sum(len(bfcl.load_bfcl(bfcl_dir / f"BFCL_v4_{c}.json")) for c in categories)
    assert toolcall["n"] == expected_n
    for category, row in toolcall["by_category"].items():
        broken = {i for i in unsatisfiable if i.rsplit("_", 1)[0] == category}
        assert row["accuracy"] == pytest.approx(1 - len(broken) / row["n"]), category
        assert row["format_compliance"] == 1.0, category
    assert set(toolcall["by_category"]) == set(categories)
    assert toolcall["format_compliance"] == 1.0
    assert toolcall["missing_predictions"] == 0

    # The examples that failed are exactly the unsatisfiable ones, nothing more.
    eval_dir = tmp_path / "home" / "runs"
    (examples_file,) = eval_dir.glob("*/evals/*/examples.jsonl")
    rows = [json.loads(line) for line in examples_file.read_text().splitlines()]
    failed = {r["id"] for r in rows if r["track"] == "toolcall" and not r["correct"]}
    assert failed == unsatisfiable

    structured = results["tracks"]["structured"]
    assert structured["n"] == 400 + 258
    assert structured["f1"]["macro"] == 1.0 and structured["accuracy"] == 1.0
    assert structured["format_compliance"] == 1.0
    assert structured["baseline"]["beats_llm"] is True
