"""The `openai` backend: any OpenAI-compatible /v1/chat/completions endpoint (the large model's API, a vLLM
server of the small model), through the standard library's urllib.

Requests run concurrently in a thread pool. A 429, a 5xx, a timeout or a dropped connection is retried with
exponential back-off, waiting at least what the server's Retry-After asks; any other HTTP error and a malformed
response are final and recorded as an empty output with the reason. The API key is read from the environment
variable the config names; it is sent in the Authorization header and appears nowhere else (not in results,
errors or logs: any message that could echo it is scrubbed).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from cep_core.errors import InputError
from cep_core.evaluation.backends import Generation, ProgressFn, Request, StopFn

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_SNIPPET = 200


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
        reason = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries += 1
            wait: float | None = None
            try:
                http_request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(http_request, timeout=self.timeout_s) as response:
                    raw = response.read()
                return self._parse(request.id, raw)
            except urllib.error.HTTPError as exc:
                snippet = _snippet(exc)
                reason = self._scrub(f"HTTP {exc.code}{': ' + snippet if snippet else ''}")
                if exc.code not in RETRY_STATUSES:
                    return Generation(request.id, "", reason)
                wait = retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (
                OSError,
                http.client.HTTPException,
            ) as exc:  # URLError, timeouts, resets, bad status lines
                cause = getattr(exc, "reason", exc)
                reason = self._scrub(f"connection failed: {type(cause).__name__}: {cause}")
            if attempt < self.max_retries:
                backoff = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                self.sleep(max(backoff, min(wait, self.max_backoff_s)) if wait is not None else backoff)
        return Generation(request.id, "", f"gave up after {self.max_retries + 1} attempts: {reason}")

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


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read()[:_SNIPPET].decode("utf-8", "replace").strip()
    except Exception:  # the body is optional; a broken one must not hide the status
        return ""


def _public_url(url: str) -> str:
    """The URL without credentials or a query string (some gateways take a key there)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
