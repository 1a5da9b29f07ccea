"""The HTTP side of `cep serve`: GET /v1/models, GET /health, POST /v1/chat/completions (stream or not).

The standard library's threading server: requests are read and answered concurrently, generation runs one at a
time behind a lock (one model, one device). Each request is logged as one line — method, path, status, tokens,
seconds — and never with its messages or headers: prompts and keys stay out of the log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cep_core.serve.chat_api import (
    ApiError,
    ChatRequest,
    Completion,
    completion_body,
    parse_request,
    stream_chunks,
)
from cep_core.serve.target import ServeTarget

MAX_BODY_BYTES = 8 * 1024 * 1024
Generate = Callable[[ChatRequest], Completion]


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        target: ServeTarget,
        generate: Generate,
        log: Callable[[str], None] | None = None,
    ):
        super().__init__(address, ChatHandler)
        self.target = target
        self.generate = generate
        self.lock = threading.Lock()
        self.log_line = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.started = time.time()
        self.requests = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        started = time.monotonic()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            target = self.server.target
            body = {
                "object": "list",
                "data": [
                    {
                        "id": target.name,
                        "object": "model",
                        "created": int(self.server.started),
                        "owned_by": "cep",
                        "cep": target.describe(),
                    }
                ],
            }
            self._json(HTTPStatus.OK, body, started)
        elif path in ("/health", "/v1/health"):
            self._json(HTTPStatus.OK, {"status": "ok", "model": self.server.target.name}, started)
        else:
            self._error(ApiError(f"no route {path or '/'}", status=404, kind="not_found_error"), started)

    def do_POST(self) -> None:  # noqa: N802
        started = time.monotonic()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._error(ApiError(f"no route {path}", status=404, kind="not_found_error"), started)
            return
        try:
            request = parse_request(self._body(), self.server.target.cep)
        except ApiError as exc:
            self._error(exc, started)
            return
        try:
            with self.server.lock:
                completion = self.server.generate(request)
        except Exception as exc:  # the model failed on this request: say so, keep serving
            self._error(
                ApiError(f"generation failed: {type(exc).__name__}", status=500, kind="server_error"), started
            )
            return
        body = completion_body(request, completion, self.server.target.name)
        if request.stream:
            self._stream(body, started)
        else:
            self._json(HTTPStatus.OK, body, started, tokens=body["usage"]["completion_tokens"])

    # ---------------------------------------------------------------- plumbing

    def _body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError("bad Content-Length") from None
        if length <= 0:
            raise ApiError("the request has no body")
        if length > MAX_BODY_BYTES:
            raise ApiError(f"the body is larger than {MAX_BODY_BYTES} bytes", status=413)
        raw = self.rfile.read(length)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError("the body is not JSON (UTF-8)") from None

    def _json(
        self, status: HTTPStatus | int, body: dict[str, Any], started: float, tokens: int | None = None
    ) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._log(int(status), started, tokens)

    def _stream(self, body: dict[str, Any], started: float) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in stream_chunks(body):
            self.wfile.write(b"data: " + json.dumps(chunk, ensure_ascii=False).encode("utf-8") + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True
        self._log(200, started, body["usage"]["completion_tokens"])

    def _error(self, exc: ApiError, started: float) -> None:
        self._json(exc.status, exc.body(), started)

    def _log(self, status: int, started: float, tokens: int | None) -> None:
        self.server.requests += 1
        extra = f" {tokens} tokens" if tokens is not None else ""
        self.server.log_line(
            f"{time.strftime('%H:%M:%S')} {self.command} {self.path.split('?', 1)[0]} {status}{extra} "
            f"{time.monotonic() - started:.2f}s"
        )

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — silence the default access log
        return
