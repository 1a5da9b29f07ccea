"""WorkflowTracer: capture paths, the timing context manager / decorator, stats and readiness."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cep_core.formats.toolcalls import parse_tool_calls
from cep_core.tracer import WorkflowTracer
from cep_core.tracer import query as q
from cep_core.tracer.ids import id_floor, id_time, new_id

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def tracer(tmp_path, monkeypatch):
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    t = WorkflowTracer(tmp_path / "traces.db", strict=True, threshold=3)
    yield t
    t.close()


def test_importing_the_tracer_loads_no_ml_stack():
    code = (
        "import sys; from cep_core.tracer import WorkflowTracer; import cep_core.tracer.export, "
        "cep_core.tracer.retrain, cep_core.cli.traces; "
        "print([m for m in ('torch', 'transformers', 'datasets', 'peft') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_capture_call_stores_every_field(tracer):
    tid = tracer.capture_call(
        agent_type="orchestrator",
        agent_name="main",
        model_used="gpt-4",
        system_prompt="You route requests.",
        user_query="Weather in Paris?",
        assistant_response="It is 18°C and sunny.",
        success=True,
        cost=0.0123,
        execution_time=1.8,
        tools=[WEATHER_TOOL],
        metadata={"request_id": "r-1", "tokens": 321},
    )
    row = q.get(tracer.store, tid)
    assert row is not None
    assert (row.agent, row.model, row.success, row.cost, row.execution_time) == (
        "orchestrator/main",
        "gpt-4",
        True,
        0.0123,
        1.8,
    )
    assert (row.system_prompt, row.user_query, row.response) == (
        "You route requests.",
        "Weather in Paris?",
        "It is 18°C and sunny.",
    )
    assert row.tools == [WEATHER_TOOL]
    assert row.metadata == {"request_id": "r-1", "tokens": 321}
    assert [m["role"] for m in row.messages] == ["system", "user", "assistant"]
    assert abs(row.ts - time.time()) < 60 and abs(id_time(row.id) - row.ts) < 0.01


def test_capture_messages_with_openai_tool_calls_and_results(tracer):
    messages = [
        {"role": "system", "content": "You are a travel assistant."},
        {"role": "user", "content": "What's the weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "call_2", "content": '{"temp": 4}'},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris 18°C, Oslo 4°C."}]},
    ]
    tid = tracer.capture_messages(
        messages,
        agent_type="travel",
        agent_name="weather",
        model_used="gpt-4o",
        tools=[WEATHER_TOOL],
        cost=0.002,
        execution_time=2.5,
    )
    row = q.get(tracer.store, tid)
    calls = row.messages[2]["tool_calls"]
    assert [(c["id"], c["name"], c["arguments"]) for c in calls] == [
        ("call_1", "get_weather", {"city": "Paris", "unit": "celsius"}),
        ("call_2", "get_weather", {"city": "Oslo"}),
    ]
    assert row.messages[3] == {"role": "tool", "content": '{"temp": 18}', "tool_call_id": "call_1"}
    assert row.response == "Paris 18°C, Oslo 4°C."  # the last assistant turn
    assert row.user_query == "What's the weather in Paris and Oslo?"
    assert "_capture_warnings" not in row.metadata


def test_a_final_tool_call_turn_is_the_response_in_target_format(tracer):
    tid = tracer.capture_messages(
        [
            {"role": "user", "content": "Weather in Lima?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "function": {"name": "get_weather", "arguments": '{"city": "Lima"}'}}
                ],
            },
        ],
        agent_type="travel",
        agent_name="weather",
        model_used="gpt-4o",
    )
    parsed = parse_tool_calls(q.get(tracer.store, tid).response, expected="target")
    assert parsed.errors == [] and [(c.name, c.arguments) for c in parsed.calls] == [
        ("get_weather", {"city": "Lima"})
    ]


def test_malformed_tool_arguments_are_kept_and_flagged_not_raised(tracer):
    tid = tracer.capture_messages(
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": '["not", "a dict"]'}}],
            },
        ],
        agent_type="a",
        agent_name="b",
        model_used="m",
    )
    row = q.get(tracer.store, tid)
    assert row.messages[1]["tool_calls"][0]["arguments_raw"] == '["not", "a dict"]'
    assert "not a JSON object" in row.metadata["_capture_warnings"][0]


def test_context_manager_times_the_call_and_records_success(tracer):
    with tracer.trace("planner", "main", "gpt-4", system_prompt="Plan.", user_query="Plan a trip") as call:
        time.sleep(0.05)
        call.response = "Day 1: Paris"
        call.cost = 0.5
        call.metadata["step"] = 1
    row = q.get(tracer.store, call.trace_id)
    assert row.success and row.response == "Day 1: Paris" and row.cost == 0.5 and row.metadata == {"step": 1}
    assert 0.05 <= row.execution_time < 2


def test_context_manager_records_a_failure_and_reraises_the_same_exception(tracer):
    boom = TimeoutError("upstream timed out after 30s")
    with (
        pytest.raises(TimeoutError) as info,
        tracer.trace("planner", "main", "gpt-4", user_query="Plan") as call,
    ):
        raise boom
    assert info.value is boom
    row = q.get(tracer.store, call.trace_id)
    assert not row.success and row.error == "TimeoutError: upstream timed out after 30s"


def test_strict_tracer_does_not_replace_the_callers_exception(tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the database folder should be")
    strict = WorkflowTracer(blocked / "traces.db", strict=True)
    with pytest.raises(KeyError), strict.trace("a", "b", "m"):
        raise KeyError("caller's own")


def test_decorator_traces_each_call_sync_and_async(tracer):
    @tracer.trace("chat", "bot", "gpt-4")
    def answer(prompt: str) -> str:
        return prompt.upper()

    @tracer.trace("chat", "bot", "gpt-4")
    async def answer_async(messages: list) -> dict:
        return {"content": "async " + messages[-1]["content"]}

    @tracer.trace("chat", "bot", "gpt-4")
    def broken(prompt: str) -> str:
        raise ValueError("bad request")

    assert answer("hi") == "HI" and answer("yo") == "YO"
    assert asyncio.run(answer_async([{"role": "user", "content": "ping"}])) == {"content": "async ping"}
    with pytest.raises(ValueError, match="bad request"):
        broken("oops")
    rows = q.page(tracer.store).rows
    assert [(r.query_preview, r.response_preview, r.success) for r in reversed(rows)] == [
        ("hi", "HI", True),
        ("yo", "YO", True),
        ("ping", "async ping", True),
        ("oops", "", False),
    ]


def test_capture_many_is_one_transaction(tracer):
    ids = tracer.capture_many(
        [
            {
                "agent_type": "a",
                "agent_name": "b",
                "model_used": "m",
                "user_query": f"q{i}",
                "assistant_response": "r",
            }
            for i in range(50)
        ]
        + [
            {
                "agent_type": "a",
                "agent_name": "b",
                "model_used": "m",
                "messages": [{"role": "user", "content": "m"}, {"role": "assistant", "content": "x"}],
            }
        ]
    )
    assert len(ids) == 51 and ids == sorted(ids) and tracer.store.count() == 51


def test_stats_and_ready_for_retraining(tracer):
    for i in range(4):
        tracer.capture_call(
            "orchestrator",
            "main",
            "gpt-4",
            user_query=f"q{i}",
            assistant_response="a",
            cost=0.01 * (i + 1),
            execution_time=float(i + 1),
        )
    tracer.capture_call("orchestrator", "main", "gpt-4", user_query="bad", success=False, execution_time=20.0)
    tracer.capture_call("extractor", "invoice", "claude", user_query="q", assistant_response="{}", cost=0.5)
    stats = tracer.stats()
    main = next(g for g in stats["groups"] if g["agent"] == "orchestrator/main")
    assert main["calls"] == 5 and main["successes"] == 4 and main["success_rate"] == pytest.approx(0.8)
    assert main["total_cost"] == pytest.approx(0.10) and main["mean_cost"] == pytest.approx(0.025)
    assert main["mean_time"] == pytest.approx(6.0) and main["p95_time"] == 20.0
    assert [p.key.agent_name for p in tracer.ready_for_retraining()] == ["main"]  # threshold 3
    assert tracer.ready_for_retraining("orchestrator/main") is True
    assert tracer.ready_for_retraining("extractor/invoice") is False


def test_ids_sort_by_time_and_bound_by_time():
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == 2000 and all(len(i) == 26 for i in ids)
    now = time.time()
    later = new_id()
    assert id_floor(now - 1) < later and id_floor(now + 5) > later
    assert abs(id_time(later) - time.time()) < 1


def test_a_call_recorded_after_the_fact_keeps_its_time_and_time_filters_find_it(tracer):
    """Backfilling from logs: `captured_at` stamps the row and its id, so paging and time filters agree."""
    now = time.time()
    day = 86400.0
    base = {"agent_type": "a", "agent_name": "b", "model_used": "m", "assistant_response": "r"}
    ids = tracer.capture_many(
        [
            {**base, "user_query": "three days ago", "captured_at": now - 3 * day},
            {
                **base,
                "user_query": "yesterday",
                "captured_at": datetime.fromtimestamp(now - day, UTC),
            },
            {
                **base,
                "user_query": "two days ago",
                "captured_at": datetime.fromtimestamp(now - 2 * day).isoformat(),
            },
        ]
    )
    live = tracer.capture_call("a", "b", "m", user_query="now", assistant_response="r")
    rows = {tid: q.get(tracer.store, tid) for tid in [*ids, live]}
    assert [round((now - rows[tid].ts) / day) for tid in ids] == [3, 1, 2]
    assert all(abs(id_time(tid) - row.ts) < 0.001 for tid, row in rows.items())
    newest_first = [s.id for s in q.page(tracer.store).rows]
    assert newest_first == [live, ids[1], ids[2], ids[0]]
    window = q.TraceFilter(since=now - 2.5 * day, until=now - 0.5 * day)
    assert [s.id for s in q.page(tracer.store, where=window).rows] == [ids[1], ids[2]]


@pytest.mark.parametrize("bad", ["yesterday", float("nan"), -5, True, 10**15, [2024]])
def test_a_captured_at_that_is_not_a_time_stamps_now_and_says_so(tracer, bad):
    before = time.time()
    tid = tracer.capture_call("a", "b", "m", user_query="q", assistant_response="r", captured_at=bad)
    row = q.get(tracer.store, tid)
    assert before - 1 <= row.ts <= time.time() + 1
    assert any("captured_at" in w and "not a time" in w for w in row.metadata["_capture_warnings"])


def test_metadata_that_is_not_json_is_stored_as_text(tracer):
    tid = tracer.capture_call(
        "a",
        "b",
        "m",
        user_query="q",
        assistant_response="r",
        metadata={"when": time, "path": tmp_path_like()},
    )
    row = q.get(tracer.store, tid)
    assert isinstance(row.metadata["when"], str) and row.metadata["path"] == "/x/y"
    json.dumps(row.to_dict())


def tmp_path_like():
    from pathlib import PurePosixPath

    return PurePosixPath("/x/y")


def test_p95_is_the_nearest_rank_per_group(tracer):
    import random

    times = [float(t) for t in range(1, 41)]
    random.Random(7).shuffle(times)
    tracer.capture_many(
        [
            {"agent_type": "a", "agent_name": "b", "model_used": "m", "user_query": "q", "execution_time": t}
            for t in times
        ]
        + [
            {
                "agent_type": "a",
                "agent_name": "b",
                "model_used": "other",
                "user_query": "q",
                "execution_time": t,
            }
            for t in (5.0, 1.0, 3.0)
        ]
        + [{"agent_type": "a", "agent_name": "b", "model_used": "untimed", "user_query": "q"}]
    )
    groups = {g["model"]: g for g in tracer.stats()["groups"]}
    assert groups["m"]["p95_time"] == 38.0  # ceil(0.95 * 40) = 38th smallest
    assert groups["other"]["p95_time"] == 5.0 and groups["untimed"]["p95_time"] is None


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "robot", 7])},
    optional={
        "content": _json_values,
        "tool_calls": _json_values,
        "tool_call_id": _json_values,
        "name": _json_values,
        "function_call": _json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    messages=st.one_of(st.lists(st.one_of(_message, _json_values), max_size=6), _json_values),
    tools=_json_values,
    metadata=_json_values,
    captured_at=st.one_of(_json_values, st.datetimes(), st.datetimes().map(datetime.isoformat)),
)
def test_any_input_is_stored_never_raised(tracer, messages, tools, metadata, captured_at):
    """A strict tracer raises on any internal failure, so this proves odd input is handled, not dropped."""
    tid = tracer.capture_messages(
        messages,
        agent_type="fuzz",
        agent_name="x",
        model_used="m",
        tools=tools,
        metadata=metadata,
        captured_at=captured_at,
    )
    row = q.get(tracer.store, tid)
    assert row is not None and row.agent == "fuzz/x"
    from cep_core.tracer.export import to_conversations

    to_conversations(row)  # the exporter copes with whatever was stored
