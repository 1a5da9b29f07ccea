"""Data preparation: conversion of real Hermes and BFCL rows, CEP, skip reasons, deterministic split."""

from __future__ import annotations

import json

import pytest

from cep_core.data.convert import NO_CALL_ANSWER, SkipRow, find_tools, rewrite_hermes_calls, row_to_messages
from cep_core.data.prepare import is_holdout, prepare
from cep_core.data.sources import BUILTIN_DEMO, PACKAGE_SAMPLE, resolve_source
from cep_core.errors import InputError
from cep_core.formats.toolcalls import parse_tool_calls
from cep_core.prompts.prefix import OPEN_MARK, get_cep
from cep_core.prompts.toolprompt import CALL_INSTRUCTION


def _write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_real_hermes_card_rows_convert_and_the_broken_one_is_counted(shared_data):
    prepared = prepare([str(shared_data / "hermes" / "card_examples.jsonl")], cep=None, holdout_fraction=0)
    assert prepared.rows == 4
    # The second card row nests "name" inside "arguments": no call can be recovered from it.
    assert prepared.skipped == {"unparseable_tool_call": 1}
    flights = next(ex for ex in prepared.train if ex.id.startswith("753d8365"))
    roles = [m["role"] for m in flights.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    system = flights.messages[0]["content"]
    assert CALL_INSTRUCTION in system and "{'arguments': <args-dict>" not in system
    assert [t["function"]["name"] for t in find_tools(system)[0]] == ["search_flights"]
    call = flights.messages[2]["content"]
    parsed = parse_tool_calls(call, expected="target")
    assert parsed.errors == [] and parsed.calls[0].name == "search_flights"
    assert parsed.calls[0].arguments == {
        "departure_city": "Los Angeles",
        "destination_city": "Auckland",
        "departure_date": "2023-07-10",
        "return_date": "2023-07-24",
        "class": "economy",
        "flexible_cancellation": True,
    }
    json_rows = [ex for ex in prepared.train if ex.id.startswith(("57aa5f1b", "c0618e9a"))]
    assert len(json_rows) == 2 and all(json.loads(ex.messages[-1]["content"]) for ex in json_rows)


def test_hermes_format_is_kept_when_asked(shared_data):
    prepared = prepare(
        [str(shared_data / "hermes" / "card_examples.jsonl")],
        cep=None,
        tool_format="hermes",
        holdout_fraction=0,
    )
    flights = next(ex for ex in prepared.train if ex.id.startswith("753d8365"))
    assert flights.messages[2]["content"].startswith("<tool_call>\n{'arguments'")


def test_rewrite_keeps_prose_and_several_calls():
    text = (
        "Checking both.\n<tool_call>\n{'arguments': {'city': 'Oslo', 'n': 2.50}, 'name': 'w'}\n</tool_call>\n"
        '<tool_call>\n{"name": "x", "arguments": {"q": "a \\"b\\""}}\n</tool_call>'
    )
    out = rewrite_hermes_calls(text)
    assert out == (
        'Checking both.\n<tool_call name="w">{"city": "Oslo", "n": 2.5}</tool_call>\n'
        '<tool_call name="x">{"q": "a \\"b\\""}</tool_call>'
    )
    with pytest.raises(SkipRow) as info:
        rewrite_hermes_calls("<tool_call>\n{'arguments': {}}\n</tool_call>")
    assert info.value.reason == "unparseable_tool_call"
    with pytest.raises(SkipRow):
        rewrite_hermes_calls("<tool_call>\n{'name': 'f', 'arguments': {}}")


def test_skip_reasons_are_counted_and_nothing_else_is_lost(tmp_path):
    good = {
        "id": "g1",
        "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}],
    }
    path = _write_jsonl(
        tmp_path / "rows.jsonl",
        [
            good,
            "{not json",
            {"id": "n1", "conversations": [{"from": "human", "value": "only a question"}]},
            {
                "id": "r1",
                "conversations": [{"from": "narrator", "value": "x"}, {"from": "gpt", "value": "y"}],
            },
            {
                "id": "j1",
                "schema": "{}",
                "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "not json"}],
            },
            {
                "id": "m1",
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "dangling"},
                ],
            },
            good,
            [1, 2],
        ],
    )
    prepared = prepare([str(path)], cep=None, holdout_fraction=0)
    assert prepared.rows == 8
    assert prepared.skipped == {
        "malformed_json": 1,
        "no_assistant_turn": 1,
        "unknown_role": 1,
        "unparseable_json_answer": 1,
        "duplicate_id": 1,
        "not_an_object": 1,
    }
    assert [ex.id for ex in prepared.train] == ["g1", "m1"]
    assert prepared.train[1].messages[-1] == {
        "role": "assistant",
        "content": "b",
    }  # trailing user turn dropped
    assert prepared.summary()["train_rows"] == 2


def test_cep_goes_to_the_head_of_the_system_message():
    cep = get_cep("compact")
    messages = row_to_messages(
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    )
    prepared = prepare([str(PACKAGE_SAMPLE)], cep=cep, holdout_fraction=0, max_rows=3)
    assert len(prepared.train) == 3
    for ex in prepared.train:
        assert ex.messages[0]["role"] == "system" and ex.messages[0]["content"].startswith(OPEN_MARK)
        assert ex.messages[0]["content"].count(OPEN_MARK) == 1
    assert messages[0]["role"] == "user"


def test_split_is_deterministic_by_id_and_independent_of_order(tmp_path):
    ids = [f"row-{i}" for i in range(400)]
    held = {i for i in ids if is_holdout(i, 0.2)}
    assert 50 < len(held) < 110
    assert held == {i for i in reversed(ids) if is_holdout(i, 0.2)}
    assert held != {i for i in ids if is_holdout(i, 0.2, seed=1)}
    rows = [
        {"id": i, "conversations": [{"from": "human", "value": i}, {"from": "gpt", "value": "ok"}]}
        for i in ids
    ]
    a = prepare([str(_write_jsonl(tmp_path / "a.jsonl", rows))], cep=None, holdout_fraction=0.2)
    b = prepare([str(_write_jsonl(tmp_path / "b.jsonl", rows[::-1]))], cep=None, holdout_fraction=0.2)
    assert {ex.id for ex in a.holdout} == {ex.id for ex in b.holdout} == held


def test_bfcl_rows_become_gold_call_conversations(shared_data):
    bfcl = shared_data / "bfcl"
    prepared = prepare(
        [
            str(bfcl / "BFCL_v4_parallel.json"),
            str(bfcl / "BFCL_v4_irrelevance.json"),
            str(bfcl / "BFCL_v4_live_relevance.json"),
        ],
        cep=None,
        holdout_fraction=0,
    )
    assert prepared.rows == 456
    # live_relevance has no answer (any call is right): nothing to train on. Irrelevance does: no call.
    assert prepared.skipped == {"no_gold_answer": 16}
    first = prepared.train[0]
    assert first.id == "parallel_0"
    parsed = parse_tool_calls(first.messages[-1]["content"], expected="target")
    assert parsed.errors == [] and len(parsed.calls) >= 2
    assert CALL_INSTRUCTION in first.messages[0]["content"]
    irrelevant = [ex for ex in prepared.train if ex.id.startswith("irrelevance_")]
    assert len(irrelevant) == 240
    assert {ex.messages[-1]["content"] for ex in irrelevant} == {NO_CALL_ANSWER}
    assert parse_tool_calls(NO_CALL_ANSWER).calls == []
    assert all("<tools>" in ex.messages[0]["content"] for ex in irrelevant)  # the functions that do not fit


def test_bfcl_sources_train_both_tracks_with_the_evaluations_split(shared_data, monkeypatch):
    from cep_core.evaluation.config import SetSpec
    from cep_core.evaluation.sets import load_set

    monkeypatch.setenv("CEP_BFCL_DIR", str(shared_data / "bfcl"))
    prepared = prepare(
        ["bfcl:simple_python", "bfcl-json:simple_python"], cep=None, holdout_fraction=0.2, seed=3
    )
    tool = [ex for ex in (*prepared.train, *prepared.holdout) if not ex.id.startswith("json:")]
    structured = [ex for ex in (*prepared.train, *prepared.holdout) if ex.id.startswith("json:")]
    assert len(tool) == 400 and len(structured) == 400
    answer = json.loads(structured[0].messages[-1]["content"])  # one raw JSON object, the gold arguments
    assert isinstance(answer, dict) and answer
    assert "as one JSON object matching this JSON schema" in structured[0].messages[0]["content"]
    # An entry is held out on both tracks or on neither, exactly as the evaluation's holdout sets say.
    held_tool = {ex.id for ex in prepared.holdout if not ex.id.startswith("json:")}
    held_json = {ex.id.removeprefix("json:") for ex in prepared.holdout if ex.id.startswith("json:")}
    assert held_tool == held_json and 40 < len(held_tool) < 120
    spec = SetSpec("bfcl-json:simple_python", split="holdout", holdout_fraction=0.2, holdout_seed=3)
    evaluated = {ex.id for ex in load_set(spec).examples}
    assert evaluated == {f"json:{i}" for i in held_json}
    spec = SetSpec("bfcl:simple_python", split="holdout", holdout_fraction=0.2, holdout_seed=3)
    assert {ex.id for ex in load_set(spec).examples} == held_tool


def test_bfcl_json_refuses_entries_that_are_not_one_call(shared_data, monkeypatch):
    monkeypatch.setenv("CEP_BFCL_DIR", str(shared_data / "bfcl"))
    prepared = prepare(["bfcl-json:parallel"], cep=None, holdout_fraction=0)
    assert prepared.skipped == {"not_one_call": 200} and not prepared.train


def test_parquet_goes_through_datasets(tmp_path):
    import datasets

    rows = [
        {"id": f"p{i}", "conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]}
        for i in range(5)
    ]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "rows.parquet"))
    prepared = prepare([str(tmp_path / "rows.parquet")], cep=None, holdout_fraction=0)
    assert [ex.id for ex in prepared.train] == [f"p{i}" for i in range(5)]


def test_missing_file_and_unreachable_hub_dataset_name_the_source(tmp_path):
    with pytest.raises(InputError, match="no such dataset file"):
        prepare([str(tmp_path / "missing.jsonl")], cep=None)
    with pytest.raises(InputError, match="NousResearch/hermes-function-calling-v1"):
        prepare(["NousResearch/hermes-function-calling-v1"], cep=None)


def test_demo_source_falls_back_to_the_packaged_sample(monkeypatch, tmp_path):
    monkeypatch.setenv("CEP_SHARED_DATA", str(tmp_path / "absent"))
    monkeypatch.setattr("cep_core.data.sources.Path.resolve", lambda self: tmp_path / "x" / "y" / "z")
    assert resolve_source(BUILTIN_DEMO) == [str(PACKAGE_SAMPLE)]


def test_a_source_cap_takes_its_first_training_rows(tmp_path):
    rows = [
        {"id": f"r{i}", "conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]}
        for i in range(50)
    ]
    path = _write_jsonl(tmp_path / "rows.jsonl", rows)
    whole = prepare([str(path)], cep=None, holdout_fraction=0.2)
    capped = prepare(
        [f"{path}[:10]", str(_write_jsonl(tmp_path / "more.jsonl", rows[:3]))], cep=None, holdout_fraction=0.2
    )
    assert [ex.id for ex in capped.train[:10]] == [ex.id for ex in whole.train[:10]]
    assert len([ex for ex in capped.train if ex.source == str(path)]) == 10
    assert {ex.id for ex in capped.holdout} <= {
        ex.id for ex in whole.holdout
    }  # held-out rows are not counted


def test_a_capped_relative_source_resolves_against_the_config(tmp_path):
    from cep_core.training.config import load_config

    (tmp_path / "data").mkdir()
    _write_jsonl(tmp_path / "data" / "rows.jsonl", [])
    (tmp_path / "run.toml").write_text('[data]\nsources = ["data/rows.jsonl[:5]", "bfcl:irrelevance[:60]"]\n')
    config = load_config(tmp_path / "run.toml")
    assert config.data.sources == [f"{tmp_path / 'data' / 'rows.jsonl'}[:5]", "bfcl:irrelevance[:60]"]
