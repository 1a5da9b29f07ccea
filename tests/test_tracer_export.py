"""Export: traces become Hermes-format JSONL the training data loaders read unchanged."""

from __future__ import annotations

import json
import time

import pytest

from cep_core.formats.toolcalls import parse_tool_calls
from cep_core.prompts.toolprompt import render_tools_prompt, tools_from_system_prompt
from cep_core.tracer import WorkflowTracer
from cep_core.tracer.export import content_hash, export_dataset, in_holdout, to_conversations
from cep_core.tracer.ids import id_floor
from cep_core.tracer.query import get
from cep_core.tracer.thresholds import AgentKey, progress

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def tracer(tmp_path, monkeypatch):
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    t = WorkflowTracer(tmp_path / "traces.db", strict=True, threshold=5)
    yield t
    t.close()


def _tool_conversation(city: str) -> list[dict]:
    return [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": f"Weather in {city}?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": json.dumps({"temp_c": 21, "sky": "clear"})},
        {"role": "assistant", "content": f"It is 21°C and clear in {city}."},
    ]


def _tools_in(system: str) -> list[dict]:
    """The tools of the last <tools> block (the preambles mention an empty `<tools></tools>` before it)."""
    block = system[system.rindex("<tools>") :]
    return tools_from_system_prompt(block)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_tool_conversation_becomes_hermes_turns_in_the_target_format(tracer, tmp_path):
    tracer.capture_messages(
        _tool_conversation("Oslo"),
        agent_type="bot",
        agent_name="weather",
        model_used="gpt-4o",
        tools=[WEATHER_TOOL],
    )
    result = export_dataset(tracer.store, tmp_path / "out", holdout_fraction=0.0)
    [row] = _lines(result.train_path)
    turns = row["conversations"]
    assert [t["from"] for t in turns] == ["system", "human", "gpt", "tool", "gpt"]
    assert turns[0]["value"] == render_tools_prompt([WEATHER_TOOL], "You are a weather bot.")
    assert _tools_in(turns[0]["value"]) == [WEATHER_TOOL]
    parsed = parse_tool_calls(turns[2]["value"], expected="target")
    assert parsed.errors == [] and [(c.name, c.arguments) for c in parsed.calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert turns[3]["value"] == (
        '<tool_response>\n{"name": "get_weather", "content": {"temp_c": 21, "sky": "clear"}}'
        "\n</tool_response>"
    )
    assert turns[4]["value"] == "It is 21°C and clear in Oslo."
    assert (
        row["agent"] == "bot/weather"
        and row["model"] == "gpt-4o"
        and row["content_hash"] == content_hash(turns)
    )
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["train"] == 1 and manifest["tool_call_format"] == "target"


def test_a_hermes_format_answer_is_rewritten_to_the_target_format(tracer):
    tid = tracer.capture_call(
        "a",
        "b",
        "m",
        user_query="Weather in Rome?",
        assistant_response='<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}'
        "\n</tool_call>",
    )
    turns, reason = to_conversations(get(tracer.store, tid))
    assert (
        reason is None and turns[-1]["value"] == '<tool_call name="get_weather">{"city": "Rome"}</tool_call>'
    )


def test_rows_that_cannot_teach_are_skipped_with_their_reason(tracer, tmp_path):
    tracer.capture_call("a", "b", "m", user_query="q", assistant_response="")
    tracer.capture_messages(
        [{"role": "user", "content": "q"}], agent_type="a", agent_name="b", model_used="m"
    )
    tracer.capture_messages(
        [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{not json at all"}}],
            },
        ],
        agent_type="a",
        agent_name="b",
        model_used="m",
    )
    tracer.capture_call("a", "b", "m", user_query="q", assistant_response="fine")
    result = export_dataset(tracer.store, tmp_path / "out", holdout_fraction=0.0)
    assert result.train == 1
    assert result.skipped == {
        "empty assistant answer": 1,
        "no assistant turn": 1,
        "malformed capture (arguments of tool call 'f' are not a JSON object)": 1,
    }


def test_filters_dedup_and_failed_calls(tracer, tmp_path):
    for city in ["Oslo", "Oslo", "Lima", "Rome"]:  # one exact duplicate
        tracer.capture_messages(
            _tool_conversation(city),
            agent_type="bot",
            agent_name="weather",
            model_used="gpt-4o",
            tools=[WEATHER_TOOL],
        )
    tracer.capture_call("bot", "weather", "claude", user_query="Weather in Bern?", assistant_response="Sunny")
    tracer.capture_call(
        "bot", "weather", "gpt-4o", user_query="Weather in Kyiv?", success=False, error="Timeout"
    )
    tracer.capture_call("bot", "news", "gpt-4o", user_query="News?", assistant_response="None today")
    every = export_dataset(tracer.store, tmp_path / "all", holdout_fraction=0.0, record=False)
    assert every.train == 5 and every.duplicates == 1
    weather = export_dataset(
        tracer.store, tmp_path / "w", agent=AgentKey("bot", "weather"), holdout_fraction=0.0, record=False
    )
    assert weather.train == 4 and {r["agent"] for r in _lines(weather.train_path)} == {"bot/weather"}
    claude = export_dataset(tracer.store, tmp_path / "c", model="claude", holdout_fraction=0.0, record=False)
    assert [r["conversations"][0]["value"] for r in _lines(claude.train_path)] == ["Weather in Bern?"]
    with_failed = export_dataset(
        tracer.store, tmp_path / "f", success=None, holdout_fraction=0.0, record=False
    )
    assert with_failed.train == 5 and with_failed.skipped == {"empty assistant answer": 1}
    future = export_dataset(tracer.store, tmp_path / "t", since=time.time() + 3600, record=False)
    assert future.examples == 0 and future.train_path.read_text() == ""


def test_the_split_is_deterministic_and_by_content(tracer, tmp_path):
    tracer.capture_many(
        [
            {
                "agent_type": "a",
                "agent_name": "b",
                "model_used": "m",
                "user_query": f"question {i}",
                "assistant_response": f"answer {i}",
            }
            for i in range(400)
        ]
    )
    first = export_dataset(tracer.store, tmp_path / "one", holdout_fraction=0.2, record=False)
    second = export_dataset(tracer.store, tmp_path / "two", holdout_fraction=0.2, record=False)
    assert first.train_path.read_text() == second.train_path.read_text()
    assert first.holdout_path.read_text() == second.holdout_path.read_text()
    assert first.train + first.holdout == 400 and 50 <= first.holdout <= 110
    for row in _lines(first.holdout_path):
        assert in_holdout(row["content_hash"], 0.2)
    train_hashes = {r["content_hash"] for r in _lines(first.train_path)}
    assert not train_hashes & {r["content_hash"] for r in _lines(first.holdout_path)}


def test_export_records_a_watermark_so_counts_restart(tracer, tmp_path):
    for i in range(6):
        tracer.capture_call("bot", "weather", "m", user_query=f"q{i}", assistant_response="a")
    [state] = progress(tracer.store, 5)
    assert state.ready and state.new_examples == 6
    path = tracer.generate_training_dataset("bot/weather")
    assert path.name == "train.jsonl" and path.parent.parent == tmp_path / "home" / "datasets"
    [state] = progress(tracer.store, 5)
    assert not state.ready and state.new_examples == 0 and state.total_successful == 6
    assert state.last_export_id == max(r[0] for r in tracer.store.conn.execute("SELECT id FROM traces"))
    tracer.capture_call("bot", "weather", "m", user_query="new", assistant_response="a")
    tracer.capture_call("bot", "weather", "m", user_query="new fail", success=False)
    [state] = progress(tracer.store, 5)
    assert state.new_examples == 1
    assert tracer.ready_for_retraining("bot/weather") is False


def test_datasets_reads_the_export(tracer, tmp_path):
    datasets = pytest.importorskip("datasets")
    for city in ["Oslo", "Lima", "Rome", "Bern"]:
        tracer.capture_messages(
            _tool_conversation(city),
            agent_type="bot",
            agent_name="weather",
            model_used="gpt-4o",
            tools=[WEATHER_TOOL],
        )
    tracer.capture_call(
        "bot", "weather", "gpt-4o", system_prompt="", user_query="Hi", assistant_response="Hello"
    )
    result = export_dataset(tracer.store, tmp_path / "out", holdout_fraction=0.0)
    ds = datasets.load_dataset(
        "json", data_files=str(result.train_path), split="train", cache_dir=str(tmp_path / "hf-cache")
    )
    assert ds.num_rows == 5
    assert set(ds.column_names) == {"id", "conversations", "agent", "model", "source", "content_hash"}
    assert ds[0]["conversations"][0]["from"] == "system"


def test_real_hermes_rows_survive_capture_and_export(tracer, tmp_path, shared_data):
    """The Hermes dataset card's multi-turn row, fed through as an OpenAI conversation, exports the same calls."""
    rows = [
        json.loads(line) for line in (shared_data / "hermes" / "card_examples.jsonl").read_text().splitlines()
    ]
    row = next(
        r
        for r in rows
        if [c["from"] for c in r["conversations"]] == ["system", "human", "gpt", "tool", "gpt"]
    )
    system, human, gpt, tool, final = (c["value"] for c in row["conversations"])
    tools = _tools_in(system)
    calls = parse_tool_calls(gpt, expected="hermes").calls
    response = json.loads(tool.split("<tool_response>")[1].split("</tool_response>")[0])
    messages = [
        {"role": "user", "content": human},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": f"c{i}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for i, c in enumerate(calls)
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "content": json.dumps(response["content"])},
        {"role": "assistant", "content": final},
    ]
    tracer.capture_messages(
        messages, agent_type="travel", agent_name="kayak", model_used="hermes-2-pro", tools=tools
    )
    result = export_dataset(tracer.store, tmp_path / "out", holdout_fraction=0.0)
    [out] = _lines(result.train_path)
    turns = out["conversations"]
    assert [t["from"] for t in turns] == ["system", "human", "gpt", "tool", "gpt"]
    assert _tools_in(turns[0]["value"]) == tools and len(tools) == 1
    assert turns[0]["value"] == render_tools_prompt(tools)
    exported_calls = parse_tool_calls(turns[2]["value"], expected="target")
    assert exported_calls.errors == [] and exported_calls.calls == calls
    assert json.loads(turns[3]["value"].split("\n")[1]) == response
    assert turns[1]["value"] == human and turns[4]["value"] == final


def test_id_floor_filters_match_time_filters(tracer, tmp_path):
    tracer.capture_call("a", "b", "m", user_query="q", assistant_response="r")
    assert export_dataset(tracer.store, tmp_path / "o", until=time.time() - 3600, record=False).examples == 0
    assert id_floor(time.time() - 3600) < tracer.store.conn.execute("SELECT id FROM traces").fetchone()[0]
