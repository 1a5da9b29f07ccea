"""The `openai` backend: any OpenAI-compatible /v1/chat/completions endpoint (the large model's API, a vLLM
server of the small model), through httpx (one client: connections are kept alive across requests) with
tenacity doing the retries.

Requests run concurrently in a thread pool. A 429, a 5xx, a timeout or a dropped connection is retried with
exponential back-off, waiting at least what the server's Retry-After asks; any other HTTP error and a malformed
response are final and recorded as an empty output with the reason. The API key is read from the environment
variable the config names; it is sent in the Authorization header and appears nowhere else (not in results,
errors or logs: any message that could echo it is scrubbed).
"""

from __future__ import annotations

import email.utils
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx
import tenacity

from cep_core.errors import InputError
from cep_core.evaluation.backends import Generation, ProgressFn, Request, StopFn

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_SNIPPET = 200


class _Retryable(Exception):
    """A failed attempt that another attempt may fix; `wait` is what the server's Retry-After asked."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "",
        concurrency: int = 4,
        max_retries: int = 5,
        timeout_s: float = 120.0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self._key = ""
        if api_key_env:
            self._key = os.environ.get(api_key_env, "")
            if not self._key:
                raise InputError(
                    f"the environment variable {api_key_env} (named by openai.api_key_env) is not set",
                    field="openai.api_key_env",
                )
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.retries = 0  # how many retries this backend made, all requests together
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "base_url": _public_url(self.base_url),
            "api_key_env": self.api_key_env or None,
            "concurrency": self.concurrency,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "retries": self.retries,
        }

    def generate(
        self, requests: list[Request], progress: ProgressFn | None = None, should_stop: StopFn | None = None
    ) -> list[Generation]:
        results: dict[int, Generation] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="cep-openai") as pool:
            futures = {pool.submit(self.complete, r): i for i, r in enumerate(requests)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress:
                    progress(1)
                if should_stop and should_stop():
                    for pending in futures:
                        pending.cancel()
                    break
        return [results[i] for i in range(len(requests)) if i in results]

    # ---------------------------------------------------------------- one request

    def complete(self, request: Request) -> Generation:
        """One chat completion, retried on what retrying can fix; never raises."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": request.messages,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            sleep=self.sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, request.id, body, headers)
        except _Retryable as exc:
            return Generation(request.id, "", f"gave up after {self.max_retries + 1} attempts: {exc.reason}")

    def _attempt(self, request_id: str, body: bytes, headers: dict[str, str]) -> Generation:
        """One POST: a Generation when the answer is final, _Retryable when another attempt may fix it."""
        try:
            response = self._http().post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:  # refused, reset, timed out, a broken status line
            raise _Retryable(self._scrub(f"connection failed: {type(exc).__name__}: {exc}")) from None
        except httpx.HTTPError as exc:  # anything else httpx raises is not fixed by asking again
            return Generation(request_id, "", self._scrub(f"request failed: {type(exc).__name__}: {exc}"))
        if response.is_success:
            return self._parse(request_id, response.content)
        snippet = response.content[:_SNIPPET].decode("utf-8", "replace").strip()
        reason = self._scrub(f"HTTP {response.status_code}{': ' + snippet if snippet else ''}")
        if response.status_code not in RETRY_STATUSES:
            return Generation(request_id, "", reason)
        raise _Retryable(reason, retry_after(response.headers.get("Retry-After")))

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Exponential back-off from backoff_s, capped at max_backoff_s, and at least what Retry-After asked
        (itself capped at max_backoff_s)."""
        backoff = min(self.max_backoff_s, self.backoff_s * 2 ** (state.attempt_number - 1))
        failure = state.outcome.exception() if state.outcome else None
        asked = failure.wait if isinstance(failure, _Retryable) else None
        return backoff if asked is None else max(backoff, min(asked, self.max_backoff_s))

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1

    def _http(self) -> httpx.Client:
        """One client for all threads (httpx's is thread-safe), made at the first request: a backend that
        never sends (a config check) costs no SSL context."""
        with self._client_lock:
            if self._client is None:
                limit = max(1, self.concurrency)
                self._client = httpx.Client(
                    timeout=self.timeout_s,
                    limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                )
            return self._client

    def _parse(self, request_id: str, raw: bytes) -> Generation:
        try:
            data = json.loads(raw.decode("utf-8"))
            content = data["choices"][0]["message"]["content"]
        except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
            text = raw[:_SNIPPET].decode("utf-8", "replace")
            return Generation(
                request_id, "", self._scrub(f"malformed response ({type(exc).__name__}: {exc}): {text!r}")
            )
        if content is None:
            return Generation(request_id, "", "malformed response: the message has no content")
        if not isinstance(content, str):
            return Generation(request_id, "", f"malformed response: content is a {type(content).__name__}")
        return Generation(request_id, content)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text


def retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _public_url(url: str) -> str:
    """The URL without credentials or a query string (some gateways take a key there)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
