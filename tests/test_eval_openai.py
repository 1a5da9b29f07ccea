"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1 (no outside network):
concurrency, 429/5xx retries honouring Retry-After, timeouts, malformed responses, and a key that leaks nowhere."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.cli import main as cep
from cep_core.errors import InputError
from cep_core.evaluation.backends import Request
from cep_core.evaluation.backends.openai import OpenAIBackend, retry_after

SAMPLES = Path(__file__).resolve().parents[1] / "cep_core" / "data" / "samples"
KEY = "sk-test-0123456789abcdef-SECRET"


class FakeOpenAI(ThreadingHTTPServer):
    """Answers /v1/chat/completions; the last user message picks the behaviour (see Handler)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.auth: set[str] = set()
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.answers: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        with server.lock:
            server.attempts[prompt] += 1
            attempt = server.attempts[prompt]
            server.auth.add(self.headers.get("Authorization", ""))
            server.bodies.append(body)
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            time.sleep(server.delay)
            self._answer(prompt, attempt, body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def _send(self, status, payload, headers=()):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a killed client hung up
            self.wfile.write(data)

    def _answer(self, prompt, attempt, body):
        if "rate-limit" in prompt and attempt == 1:
            return self._send(429, {"error": {"message": "slow down"}}, [("Retry-After", "0")])
        if "flaky" in prompt and attempt <= 2:
            return self._send(503, {"error": {"message": "overloaded"}})
        if "slow" in prompt and attempt == 1:
            time.sleep(1.5)  # past the client's timeout
        if "always-500" in prompt:
            return self._send(500, {"error": {"message": "boom"}})
        if "bad-request" in prompt:
            return self._send(
                400, {"error": {"message": f"bad request; you sent {self.headers['Authorization']}"}}
            )
        if "not-json" in prompt:
            return self._send(200, b"<html>gateway error</html>")
        if "no-choices" in prompt:
            return self._send(200, {"id": "x", "object": "chat.completion"})
        content = self.server.answers.get(prompt, f"echo: {prompt}")
        return self._send(
            200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
        )


@pytest.fixture
def server():
    srv = FakeOpenAI()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _request(text: str) -> Request:
    return Request(text, [{"role": "system", "content": "sys"}, {"role": "user", "content": text}])


def test_answers_come_back_in_order_with_bounded_concurrency(server, monkeypatch):
    monkeypatch.setenv("EVAL_KEY", KEY)
    server.delay = 0.05
    backend = OpenAIBackend(server.url, "big-model", api_key_env="EVAL_KEY", concurrency=3)
    done = []
    out = backend.generate([_request(f"q{i}") for i in range(12)], done.append)
    assert [g.output for g in out] == [f"echo: q{i}" for i in range(12)]
    assert all(g.error is None for g in out)
    assert sum(done) == 12
    assert 1 < server.max_in_flight <= 3
    assert server.auth == {f"Bearer {KEY}"}
    assert {b["model"] for b in server.bodies} == {"big-model"}
    assert all(b["temperature"] == 0.0 for b in server.bodies)


def test_429_and_503_are_retried_with_back_off(server):
    waits = []
    backend = OpenAIBackend(server.url, "m", backoff_s=0.25, max_retries=3, sleep=waits.append)
    out = backend.generate([_request("rate-limit please"), _request("flaky please")])
    assert [g.output for g in out] == ["echo: rate-limit please", "echo: flaky please"]
    assert server.attempts["rate-limit please"] == 2
    assert server.attempts["flaky please"] == 3
    assert backend.retries == 3
    assert sorted(waits) == [0.25, 0.25, 0.5]  # exponential: the flaky one waited 0.25 then 0.5


def test_retry_after_is_honoured_and_parsed():
    assert retry_after("7") == 7.0
    assert retry_after("0.5") == 0.5
    assert retry_after(None) is None and retry_after("soon") is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after(future) <= 31


def test_the_wait_is_at_least_what_retry_after_asks(server, monkeypatch):
    waits = []
    backend = OpenAIBackend(server.url, "m", backoff_s=0.01, sleep=waits.append)
    original = Handler._answer

    def ask_for_seven(self, prompt, attempt, body):
        if attempt == 1:
            return self._send(429, {"error": {}}, [("Retry-After", "7")])
        return original(self, prompt, attempt, body)

    monkeypatch.setattr(Handler, "_answer", ask_for_seven)
    assert backend.complete(_request("x")).output == "echo: x"
    assert waits == [7.0]


def test_a_timeout_is_retried(server):
    backend = OpenAIBackend(server.url, "m", timeout_s=0.5, backoff_s=0.01)
    out = backend.complete(_request("slow please"))
    assert out.output == "echo: slow please" and out.error is None
    assert server.attempts["slow please"] == 2


def test_final_failures_are_empty_outputs_with_the_reason_and_never_the_key(server, monkeypatch):
    monkeypatch.setenv("EVAL_KEY", KEY)
    backend = OpenAIBackend(server.url, "m", api_key_env="EVAL_KEY", max_retries=2, backoff_s=0.01)
    bad, malformed, no_choices, down = backend.generate(
        [_request("bad-request"), _request("not-json"), _request("no-choices"), _request("always-500")]
    )
    assert bad.output == "" and bad.error.startswith("HTTP 400")
    assert server.attempts["bad-request"] == 1  # a 400 is not retried
    assert KEY not in bad.error and "[redacted]" in bad.error  # the server echoed the header back
    assert (
        malformed.output == ""
        and "malformed response" in malformed.error
        and "gateway error" in malformed.error
    )
    assert server.attempts["not-json"] == 1
    assert no_choices.output == "" and "malformed response" in no_choices.error
    assert down.output == "" and "gave up after 3 attempts" in down.error and "HTTP 500" in down.error
    assert server.attempts["always-500"] == 3
    assert KEY not in json.dumps(backend.describe())


def test_a_refused_connection_is_retried_then_reported(monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("EVAL_KEY", KEY)
    waits = []
    backend = OpenAIBackend(
        f"http://127.0.0.1:{port}/v1",
        "m",
        api_key_env="EVAL_KEY",
        max_retries=2,
        backoff_s=0.5,
        sleep=waits.append,
    )
    out = backend.complete(_request("x"))
    assert out.output == "" and "gave up after 3 attempts: connection failed" in out.error
    assert waits == [0.5, 1.0] and backend.retries == 2


def test_the_key_is_in_no_log_record_even_at_debug_level(server, monkeypatch, caplog):
    import logging

    monkeypatch.setenv("EVAL_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    backend = OpenAIBackend(server.url, "m", api_key_env="EVAL_KEY", backoff_s=0.01)
    out = backend.generate([_request("rate-limit me"), _request("bad-request")])
    assert out[0].output == "echo: rate-limit me" and out[1].error.startswith("HTTP 400")
    assert caplog.records and KEY not in caplog.text  # httpx and httpcore did log the requests


def test_an_unset_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(InputError) as err:
        OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env="NO_SUCH_KEY_VAR")
    assert "NO_SUCH_KEY_VAR" in str(err.value) and err.value.field == "openai.api_key_env"


def test_cep_eval_with_the_openai_backend_scores_both_tracks(server, tmp_path, monkeypatch, capsys):
    """The whole job against the server: the answers it gives are the sample predictions, two prompts misbehave."""
    home = tmp_path / "home"
    monkeypatch.setenv("CEP_HOME", str(home))
    monkeypatch.setenv("EVAL_KEY", KEY)
    outputs = {}
    for name in ("toolcall", "structured"):
        lines = (SAMPLES / f"demo_{name}_predictions.jsonl").read_text().splitlines()
        preds = {json.loads(x)["id"]: json.loads(x)["output"] for x in lines if x.strip()}
        for line in (SAMPLES / f"demo_{name}.jsonl").read_text().splitlines():
            row = json.loads(line)
            prompt = row["messages"][-1]["content"]
            outputs[row["id"]] = preds[row["id"]]
            server.answers[prompt] = preds[row["id"]]
    # One toolcall prompt is rate-limited first, one structured prompt gets a malformed body.
    first_tool = json.loads((SAMPLES / "demo_toolcall.jsonl").read_text().splitlines()[0])
    first_json = json.loads((SAMPLES / "demo_structured.jsonl").read_text().splitlines()[0])
    server.answers["rate-limit " + first_tool["messages"][-1]["content"]] = outputs[first_tool["id"]]
    rows = []
    for line in (SAMPLES / "demo_toolcall.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] == first_tool["id"]:
            row["messages"][-1]["content"] = "rate-limit " + row["messages"][-1]["content"]
        rows.append(row)
    (tmp_path / "tool.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rows = []
    for line in (SAMPLES / "demo_structured.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] == first_json["id"]:
            row["messages"][-1]["content"] = "not-json " + row["messages"][-1]["content"]
        rows.append(row)
    (tmp_path / "structured.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "api.toml").write_text(
        f'name = "api"\nbackend = "openai"\nmodel = "big-model"\ncep = "compact"\n'
        '[[sets]]\nsource = "tool.jsonl"\n[[sets]]\nsource = "structured.jsonl"\n'
        f'[openai]\nbase_url = "{server.url}"\napi_key_env = "EVAL_KEY"\nconcurrency = 4\nbackoff_s = 0.01\n'
    )
    assert cep(["eval", str(tmp_path / "api.toml"), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["tracks"]["toolcall"]["n"] == 12 and results["tracks"]["structured"]["n"] == 8
    assert results["generation_errors"]["count"] == 1
    assert results["generation_errors"]["examples"][0]["id"] == first_json["id"]
    assert server.attempts["rate-limit " + first_tool["messages"][-1]["content"]] == 2
    assert results["backend"]["retries"] == 1
    # The CEP was applied at inference: every system prompt the server saw starts with it.
    from cep_core.prompts.prefix import get_cep

    assert all(b["messages"][0]["content"].startswith(get_cep("compact").text) for b in server.bodies)
    # The key reached the server and nothing else: no file the job wrote holds it.
    assert server.auth == {f"Bearer {KEY}"}
    for path in home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def _slow_eval_job(server, tmp_path, monkeypatch):
    """An openai-backend evaluation started through the jobs layer, slow enough to be stopped mid-way."""
    from cep_core.jobs.manager import JobManager

    home = tmp_path / "home"
    monkeypatch.setenv("CEP_HOME", str(home))
    server.delay = 0.3
    (tmp_path / "slow.toml").write_text(
        'name = "slow"\nbackend = "openai"\nmodel = "m"\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\n'
        f'[openai]\nbase_url = "{server.url}"\nconcurrency = 1\n'
    )
    manager = JobManager(home=home)
    job = manager.start_config(tmp_path / "slow.toml", kind="eval")
    deadline = time.monotonic() + 60
    while sum(server.attempts.values()) < 2:  # generating
        assert time.monotonic() < deadline, (Path(job.run_dir) / "stdout.log").read_text()
        time.sleep(0.05)
    return manager, job, home


def test_stopping_an_evaluation_job_ends_it_as_stopped(server, tmp_path, monkeypatch):
    from cep_core.evaluation import store
    from cep_core.runs import read_progress

    manager, job, home = _slow_eval_job(server, tmp_path, monkeypatch)
    job = manager.stop(job.id, grace_s=20)
    assert job.state == "stopped"
    (record,) = store.list_evaluations(home)
    assert record.state == "stopped"
    end = read_progress(job.run_dir)[-1]
    assert end["event"] == "end" and end["status"] == "stopped" and 0 < end["step"] < 12
    assert sum(server.attempts.values()) < 12  # the rest was never sent


def test_a_killed_evaluation_never_looks_alive(server, tmp_path, monkeypatch):
    import os
    import signal

    from cep_core.evaluation import store

    manager, job, home = _slow_eval_job(server, tmp_path, monkeypatch)
    (record,) = store.list_evaluations(home)
    assert record.state == "running"
    os.killpg(os.getpgid(job.pid), signal.SIGKILL)  # runner and job together: no exit record, no end event
    deadline = time.monotonic() + 30
    while job.state == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = manager.refresh(manager.registry.get(job.id))
    assert job.state == "crashed"
    (record,) = store.list_evaluations(home)
    assert record.state == "crashed" and record.error


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@settings(max_examples=300, deadline=None)
def test_any_response_body_gives_a_text_output_never_an_exception(body):
    out = OpenAIBackend("http://127.0.0.1:9/v1", "m")._parse("x", body)
    assert isinstance(out.output, str)
    assert out.error is None or out.output == ""


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_retry_after_header_is_read_without_raising(value):
    wait = retry_after(value)
    assert wait is None or wait >= 0
