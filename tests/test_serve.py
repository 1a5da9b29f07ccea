"""`cep serve`: the OpenAI chat-completions protocol (pure functions, fuzzed), the HTTP server on 127.0.0.1 with
a real model, `cep eval` through it scoring exactly what the hf backend scores, and the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.prompts.prefix import get_cep
from cep_core.prompts.toolprompt import render_tools_prompt
from cep_core.serve.chat_api import (
    ApiError,
    Completion,
    completion_body,
    parse_request,
    response_message,
    stream_chunks,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
SAMPLES = Path(__file__).resolve().parents[1] / "cep_core" / "data" / "samples"


# ---------------------------------------------------------------- the protocol


def test_tools_are_rendered_as_in_training_and_the_cep_applied_once():
    cep = get_cep("compact")
    body = {
        "model": "x",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Oslo?"}],
        "tools": [WEATHER],
    }
    request = parse_request(body, cep)
    system = request.messages[0]["content"]
    assert system.startswith(cep.text)
    assert system.endswith(render_tools_prompt([WEATHER], "Be brief."))
    assert system.count("<|formatting_rules|>") == 1
    again = parse_request({**body, "messages": request.messages}, cep)  # a client that already sent the CEP
    assert again.messages[0]["content"].count("<|formatting_rules|>") == 1
    assert request.parse_calls and request.temperature == 0.0


def test_earlier_calls_and_content_parts_become_the_training_format():
    body = {
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Rules."}]},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"t": 3}'},
        ]
    }
    messages = parse_request(body, None).messages
    assert messages[0] == {"role": "system", "content": "Rules."}
    assert messages[2]["content"] == '<tool_call name="get_weather">{"city": "Oslo"}</tool_call>'
    assert messages[3] == {"role": "tool", "content": '{"t": 3}'}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
        (
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"function": {}}]},
            "tools[0].function.name",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": True}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_a_bad_request_names_its_field_and_never_echoes_content(body, param):
    body = json.loads(json.dumps(body).replace('"x"', '"sk-secret-123"'))
    with pytest.raises(ApiError) as err:
        parse_request(body, None)
    assert err.value.param == param and err.value.status == 400
    assert "sk-secret" not in json.dumps(err.value.body())


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
KEYS = st.sampled_from(
    [
        "messages",
        "tools",
        "tool_choice",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "role",
        "content",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "stream",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSONISH, max_size=6) | JSONISH)
def test_any_body_is_a_request_or_an_api_error(body):
    try:
        parse_request(body, get_cep("compact"))
    except ApiError as exc:
        assert exc.status == 400 and exc.body()["error"]["type"] == "invalid_request_error"


def test_outputs_become_tool_calls_only_when_tools_were_offered():
    with_tools = parse_request({"messages": [{"role": "user", "content": "Oslo"}], "tools": [WEATHER]}, None)
    without = parse_request({"messages": [{"role": "user", "content": "Oslo"}]}, None)
    text = 'Sure.\n<tool_call name="get_weather">{"city": "Oslo"}</tool_call>'
    message, has_calls = response_message(with_tools, text)
    assert has_calls and message["content"] == "Sure."
    (call,) = message["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert response_message(without, text) == ({"role": "assistant", "content": text}, False)
    plain, has_calls = response_message(with_tools, "It is sunny.")
    assert not has_calls and plain == {"role": "assistant", "content": "It is sunny."}
    body = completion_body(with_tools, Completion(text, 12, 9, "stop"), "m")
    assert body["choices"][0]["finish_reason"] == "tool_calls" and body["usage"]["total_tokens"] == 21
    first, last = stream_chunks(body)
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert last["choices"][0]["finish_reason"] == "tool_calls" and last["choices"][0]["delta"] == {}


# ---------------------------------------------------------------- the server, with a real model


@pytest.fixture(scope="module")
def served(tiny_run):
    from cep_core.serve.engine import build_engine
    from cep_core.serve.server import ChatServer
    from cep_core.serve.target import resolve_target

    target = resolve_target(str(tiny_run))
    engine = build_engine(target, "transformers", device="cpu", max_new_tokens=48)
    lines: list[str] = []
    server = ChatServer(("127.0.0.1", 0), target, engine, log=lines.append)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, lines
    server.shutdown()
    server.server_close()


def _post(url: str, body: object, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_server_answers_chat_completions_models_and_errors(served, tiny_run):
    server, lines = served
    secret = "sk-live-abcdefghijklmnopqrstuvwx"
    status, body = _post(
        server.url + "/chat/completions",
        {
            "model": "anything",
            "messages": [{"role": "user", "content": f"Weather in Oslo? {secret}"}],
            "tools": [WEATHER],
            "max_tokens": 16,
        },
    )
    assert status == 200 and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length", "tool_calls")
    assert 0 < body["usage"]["completion_tokens"] <= 16 and body["usage"]["prompt_tokens"] > 50
    assert body["model"] == tiny_run.name
    with urllib.request.urlopen(server.url + "/models", timeout=10) as response:
        models = json.loads(response.read())
    assert models["data"][0]["id"] == tiny_run.name and models["data"][0]["cep"]["cep"] == "compact"
    status, error = _post(server.url + "/chat/completions", None, raw=b"{not json")
    assert status == 400 and error["error"]["message"].startswith("the body is not JSON")
    status, error = _post(server.url + "/nope", {})
    assert status == 404 and error["error"]["type"] == "not_found_error"
    assert any(" 200 " in line and "tokens" in line for line in lines)
    assert not any(secret in line or "Oslo" in line for line in lines)  # no prompt ever reaches the log


def test_cep_eval_through_the_server_scores_what_the_hf_backend_scores(
    served, tiny_run, tmp_path, monkeypatch, capsys
):
    from cep_core.cli import main as cep

    server, _ = served
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    sets = (
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\nsample = 6\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_structured.jsonl"}"\nsample = 3\n'
    )
    results = {}
    for backend, extra in (
        ("hf", '[hf]\nmax_new_tokens = 48\ndevice = "cpu"\nbatch_size = 1\n'),
        ("openai", f'[openai]\nbase_url = "{server.url}"\nmax_tokens = 48\nconcurrency = 2\n'),
    ):
        config = tmp_path / f"{backend}.toml"
        model = "" if backend == "hf" else f'model = "{tiny_run.name}"\n'
        config.write_text(
            f'name = "{backend}"\nbackend = "{backend}"\nrun = "{tiny_run}"\n{model}{sets}{extra}'
        )
        assert cep(["eval", str(config), "--json"]) == 0
        results[backend] = json.loads(capsys.readouterr().out)
    hf, api = results["hf"], results["openai"]
    assert api["generation_errors"]["count"] == 0
    for track in ("toolcall", "structured"):
        for key in ("f1", "accuracy", "format_compliance", "errors", "n"):
            assert api["tracks"][track][key] == hf["tracks"][track][key], (track, key)
    outputs = {}
    for name, r in results.items():
        rows = (
            (Path(r["training_run"]) / "evals" / r["eval_id"] / "predictions.jsonl").read_text().splitlines()
        )
        outputs[name] = {json.loads(line)["id"]: json.loads(line)["output"] for line in rows}
    assert outputs["openai"] == outputs["hf"]


def test_cli_serve_runs_until_interrupted(tiny_run):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cep_core.cli",
            "serve",
            str(tiny_run),
            "--port",
            "0",
            "--device",
            "cpu",
            "--max-tokens",
            "8",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = None
        seen: list[str] = []
        reader = threading.Thread(target=lambda: seen.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        deadline = time.monotonic() + 300
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            match = re.search(r"listening at (http://127\.0\.0\.1:\d+/v1)", "".join(seen))
            url = match.group(1) if match else None
            time.sleep(0.2)
        assert url, "".join(seen)
        assert "CEP compact" in "".join(seen)
        status, body = _post(url + "/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
        assert status == 200 and body["usage"]["completion_tokens"] <= 8
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_serving_an_unknown_target_or_vllm_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    from cep_core.cli import main as cep

    assert cep(["serve", "builtin:tiny"]) == 2
    assert "serve the run instead" in capsys.readouterr().err
    assert cep(["serve", str(tmp_path / "nothing"), "--engine", "vllm"]) == 2
    assert "needs vLLM installed on a host with a CUDA GPU" in capsys.readouterr().err
