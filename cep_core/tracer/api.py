"""WorkflowTracer: the object production code holds to capture LLM calls.

Safe to leave inside production code: it imports nothing heavy, a capture is one small SQLite INSERT,
and a capture that cannot be written is logged and counted (`tracer.dropped`) instead of raising into
the caller — unless the tracer was made with `strict=True`, as tests and batch jobs may want.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from cep_core.errors import CepError
from cep_core.tracer import query, thresholds
from cep_core.tracer.capture import build_row, normalize_messages
from cep_core.tracer.forks import hold_across_fork
from cep_core.tracer.redact import PatternSpec, Redactor, redact_text
from cep_core.tracer.store import TraceRow, TraceStore, WalCheckpointer

log = logging.getLogger("cep_core.tracer")
F = TypeVar("F", bound=Callable[..., Any])
REOPEN_AFTER_S = 5.0
LOG_EVERY_S = 60.0


_LIVE_TRACERS: weakref.WeakSet[WorkflowTracer] = weakref.WeakSet()
_INHERITED_STORES: list[TraceStore] = []
# No fork while one of our threads is inside a write.
hold_across_fork(lambda: [tracer._lock for tracer in list(_LIVE_TRACERS)])


class TraceCaptureError(CepError):
    """A capture could not be stored (raised only by a strict tracer). The message holds no secret."""


class WorkflowTracer:
    """Capture calls into the trace store, export them as training data, and say when an agent is ready."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        strict: bool = False,
        redact_patterns: Iterable[PatternSpec] = (),
        threshold: int = thresholds.DEFAULT_THRESHOLD,
    ):
        from cep_core.store.state import traces_db_path

        self.path = Path(path) if path is not None else traces_db_path()
        self.strict = strict
        self.threshold = threshold
        self.redactor = Redactor(redact_patterns)
        self.dropped = 0
        self._store: TraceStore | None = None
        self._checkpointer: WalCheckpointer | None = None
        self._store_pid = -1
        self._open_failed_at = 0.0
        self._last_log = 0.0
        self._lock = threading.Lock()
        _LIVE_TRACERS.add(self)

    # -- the store -------------------------------------------------------------------------------------------
    @property
    def store(self) -> TraceStore:
        """The open store (reopened after a fork: SQLite connections must not cross one)."""
        if self._store is None or self._store_pid != os.getpid():
            if self._store is not None:
                # Inherited through fork: SQLite says never to use or close it here; keep it from the GC.
                _INHERITED_STORES.append(self._store)
            self._store = TraceStore(self.path)
            self._checkpointer = None  # a forked child has no thread: start its own on its first write
            self._store_pid = os.getpid()
        return self._store

    def close(self) -> None:
        if self._store_pid == os.getpid():
            if self._checkpointer is not None:
                self._checkpointer.stop()
            if self._store is not None:
                self._store.close()
        self._store = None
        self._checkpointer = None

    # -- capture ---------------------------------------------------------------------------------------------
    def capture_call(
        self,
        agent_type: str,
        agent_name: str,
        model_used: str,
        system_prompt: str = "",
        user_query: str = "",
        assistant_response: str | dict[str, Any] = "",
        success: bool = True,
        cost: float | None = None,
        execution_time: float | None = None,
        tools: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        error: str | None = None,
        captured_at: float | str | datetime | None = None,
    ) -> str | None:
        """Record one call from its flat fields; returns the trace id, or None when it could not be stored.

        `captured_at` (unix seconds, a datetime or ISO-8601) records a call made earlier, as when backfilling
        from logs; by default the call is stamped now."""
        messages: list[Any] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": user_query})
        if isinstance(assistant_response, dict):
            messages.append({"role": "assistant", **assistant_response})
        else:
            messages.append({"role": "assistant", "content": assistant_response})
        return self.capture_messages(
            messages,
            agent_type=agent_type,
            agent_name=agent_name,
            model_used=model_used,
            tools=tools,
            success=success,
            cost=cost,
            execution_time=execution_time,
            metadata=metadata,
            error=error,
            captured_at=captured_at,
        )

    def capture_messages(
        self,
        messages: list[Any],
        *,
        agent_type: str,
        agent_name: str,
        model_used: str,
        tools: list[dict[str, Any]] | None = None,
        success: bool = True,
        cost: float | None = None,
        execution_time: float | None = None,
        metadata: dict[str, Any] | None = None,
        error: str | None = None,
        captured_at: float | str | datetime | None = None,
    ) -> str | None:
        """Record a whole OpenAI-style conversation (tool calls with JSON-string arguments, tool results)."""
        try:
            row = self._row(
                messages,
                agent_type,
                agent_name,
                model_used,
                tools,
                success,
                cost,
                execution_time,
                metadata,
                error,
                captured_at,
            )
            with self._lock:
                self._write([row])
            return row.id
        except Exception as exc:  # noqa: BLE001 — a capture must never break the caller
            self._failed(exc, f"{agent_type}/{agent_name}")
            return None

    def capture_many(self, calls: Iterable[dict[str, Any]]) -> list[str]:
        """Record many calls in one transaction (each a dict of capture_call's or capture_messages' arguments)."""
        try:
            rows = []
            for call in calls:
                call = dict(call)
                if "messages" in call:
                    msgs = call.pop("messages")
                else:
                    msgs = [{"role": "system", "content": call.pop("system_prompt", "")}]
                    msgs = [m for m in msgs if m["content"]]
                    msgs.append({"role": "user", "content": call.pop("user_query", "")})
                    msgs.append({"role": "assistant", "content": call.pop("assistant_response", "")})
                rows.append(
                    self._row(
                        msgs,
                        call.pop("agent_type"),
                        call.pop("agent_name"),
                        call.pop("model_used"),
                        call.pop("tools", None),
                        call.pop("success", True),
                        call.pop("cost", None),
                        call.pop("execution_time", None),
                        call.pop("metadata", None),
                        call.pop("error", None),
                        call.pop("captured_at", None),
                    )
                )
            with self._lock:
                self._write(rows)
            return [r.id for r in rows]
        except Exception as exc:  # noqa: BLE001
            self._failed(exc, "batch")
            return []

    def trace(
        self,
        agent_type: str,
        agent_name: str,
        model_used: str,
        *,
        system_prompt: str = "",
        user_query: str = "",
        messages: list[Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> TracedCall:
        """A context manager (and decorator) that times a call and records it, failures included.

        ``with tracer.trace("planner", "main", "gpt-4", user_query=q) as call: call.response = llm(q)``.
        An exception inside is recorded (success false, its type and message, redacted) and re-raised unchanged.
        """
        return TracedCall(
            self,
            agent_type,
            agent_name,
            model_used,
            system_prompt=system_prompt,
            user_query=user_query,
            messages=messages,
            tools=tools,
            metadata=metadata,
        )

    # -- reading -----------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Per agent and model: calls, success rate, cost, time; per agent: progress to the threshold."""
        return query.stats(self.store, threshold=self.threshold)

    def ready_for_retraining(self, agent: str | None = None) -> list[thresholds.AgentProgress] | bool:
        """With `agent` ("type/name"): whether it has enough new examples. Without: the agents that do."""
        progress = thresholds.progress(self.store, self.threshold)
        if agent is not None:
            key = thresholds.parse_agent(agent)
            return any(p.key == key and p.ready for p in progress)
        return [p for p in progress if p.ready]

    def generate_training_dataset(
        self, agent: str | None = None, out_dir: str | Path | None = None, **filters: Any
    ) -> Path:
        """Export successful calls as Hermes JSONL; returns the train file (holdout and manifest beside it)."""
        from cep_core.tracer.export import default_export_dir, export_dataset

        key = thresholds.resolve_agent(self.store, agent) if agent else None
        out = Path(out_dir) if out_dir else default_export_dir(key)
        result = export_dataset(self.store, out, agent=key, redactor=self.redactor, **filters)
        return result.train_path

    # -- internals ---------------------------------------------------------------------------------------------
    def _row(
        self,
        messages: Any,
        agent_type: str,
        agent_name: str,
        model: str,
        tools: Any,
        success: bool,
        cost: Any,
        execution_time: Any,
        metadata: Any,
        error: Any,
        captured_at: Any = None,
    ) -> TraceRow:
        warnings: list[str] = []
        norm = normalize_messages(messages, warnings)
        return build_row(
            agent_type=agent_type,
            agent_name=agent_name,
            model=model,
            messages=norm,
            tools=tools,
            success=success,
            cost=cost,
            execution_time=execution_time,
            error=error,
            metadata=metadata,
            redactor=self.redactor,
            warnings=warnings,
            captured_at=captured_at,
        )

    def _write(self, rows: list[TraceRow]) -> None:
        if (
            self._store is None
            and time.monotonic() - self._open_failed_at < REOPEN_AFTER_S
            and self._open_failed_at
        ):
            raise OSError("the trace store could not be opened recently; not retrying yet")
        try:
            store = self.store
        except Exception:
            self._open_failed_at = time.monotonic()
            raise
        if len(rows) == 1:
            store.insert(rows[0])
        else:
            store.insert_many(rows)
        if self._checkpointer is None:
            self._checkpointer = WalCheckpointer(store)
            # A tracer dropped without close() must not leave its thread behind.
            weakref.finalize(self, self._checkpointer.stop, False)
        self._checkpointer.wrote()

    def _failed(self, exc: BaseException, what: str) -> None:
        detail = redact_text(f"{type(exc).__name__}: {exc}")
        what = redact_text(what)
        message = f"could not store trace for {what} in {self.path}: {detail}"
        if self.strict:
            raise TraceCaptureError(message) from None
        self.dropped += 1
        now = time.monotonic()
        if self.dropped == 1 or now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            log.warning("%s (%d capture(s) dropped so far)", message, self.dropped)


class TracedCall:
    """One timed call: set `.response` (or `.messages`, `.cost`, `.success`, `.metadata`) inside the block."""

    def __init__(
        self,
        tracer: WorkflowTracer,
        agent_type: str,
        agent_name: str,
        model_used: str,
        *,
        system_prompt: str = "",
        user_query: str = "",
        messages: list[Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.tracer = tracer
        self.agent_type, self.agent_name, self.model_used = agent_type, agent_name, model_used
        self.system_prompt, self.user_query = system_prompt, user_query
        self.messages = list(messages) if messages is not None else None
        self.tools = tools
        self.metadata = dict(metadata or {})
        self.response: Any = None
        self.cost: float | None = None
        self.success = True
        self.trace_id: str | None = None
        self._started = 0.0

    def __enter__(self) -> TracedCall:
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        elapsed = time.perf_counter() - self._started
        error = None
        success = self.success
        if exc is not None:
            success = False
            error = f"{exc_type.__name__}: {exc}"
        try:
            self._record(success, elapsed, error)
        except TraceCaptureError as capture_error:
            if exc is None:
                raise
            # A strict tracer still must not replace the caller's own exception with its own.
            log.warning("%s", capture_error)
        return False  # never swallow the caller's exception

    def _record(self, success: bool, elapsed: float, error: str | None) -> None:
        response = self.response
        if self.messages is not None:
            messages = list(self.messages)
        else:
            messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            messages.append({"role": "user", "content": self.user_query})
        if isinstance(response, list):  # the whole conversation came back
            messages = list(response)
        elif isinstance(response, dict):
            messages.append({"role": "assistant", **response})
        elif response is not None:
            messages.append({"role": "assistant", "content": str(response)})
        self.trace_id = self.tracer.capture_messages(
            messages,
            agent_type=self.agent_type,
            agent_name=self.agent_name,
            model_used=self.model_used,
            tools=self.tools,
            success=success,
            cost=self.cost,
            execution_time=elapsed,
            metadata=self.metadata,
            error=error,
        )

    def __call__(self, fn: F) -> F:
        """As a decorator: each call is traced; the return value is the response (text, message or messages).

        The user query is the first string argument, or the `messages` argument when there is one.
        """
        template = self

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> TracedCall:
            call = TracedCall(
                template.tracer,
                template.agent_type,
                template.agent_name,
                template.model_used,
                system_prompt=template.system_prompt,
                tools=template.tools,
                metadata=template.metadata,
                messages=template.messages,
                user_query=template.user_query,
            )
            msgs = kwargs.get("messages")
            if msgs is None:
                msgs = next((a for a in args if isinstance(a, list)), None)
            if isinstance(msgs, list):
                call.messages = list(msgs)
            elif not call.user_query:
                call.user_query = next((a for a in (*args, *kwargs.values()) if isinstance(a, str)), "")
            return call

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with start(args, kwargs) as call:
                    call.response = await fn(*args, **kwargs)
                    return call.response

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with start(args, kwargs) as call:
                call.response = fn(*args, **kwargs)
                return call.response

        return wrapper  # type: ignore[return-value]
