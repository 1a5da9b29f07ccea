"""One trace filter language for `cep traces list/search` (flags) and the console's filter line (`key=value`).

Both build the same `FilterTerms` and turn it into a query filter through `to_filter`, so an agent, a model or
a time is accepted or refused by one rule: an agent is TYPE/NAME or a bare type or name that names exactly one
stored agent; a time is unix seconds, an ISO date/time or an age such as 2h.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cep_core.ages import parse_time
from cep_core.errors import InputError

if TYPE_CHECKING:
    from cep_core.tracer.query import TraceFilter
    from cep_core.tracer.store import TraceStore

FILTER_KEYS = ("agent", "model", "success", "since")
SYNTAX = "agent=TYPE/NAME model=M success=yes|no since=2h|2026-05-01"  # the terms, as help text shows them
_YES = ("yes", "true", "1")
_NO = ("no", "false", "0")


@dataclass(frozen=True, slots=True)
class FilterTerms:
    """Filter values as the user wrote them; `since` stays text so an age keeps sliding on every refresh."""

    agent: str | None = None
    model: str | None = None
    success: bool | None = None
    since: str | None = None
    flags: bool = False  # written as CLI flags (--since) rather than terms (since=): errors name it that way

    def label(self, key: str) -> str:
        """How the user wrote `key`, for an error message."""
        return f"--{key}" if self.flags else f"{key}={getattr(self, key)}"

    def describe(self) -> str:
        """The terms back as typed (`since=2d`, not seconds); 'all traces' when there are none."""
        parts = [f"{k}={getattr(self, k)}" for k in ("agent", "model") if getattr(self, k)]
        if self.success is not None:
            parts.append(f"success={'yes' if self.success else 'no'}")
        if self.since:
            parts.append(f"since={self.since}")
        return " ".join(parts) or "all traces"

    def to_filter(self, store: TraceStore, now: float | None = None) -> TraceFilter:
        """The query filter; an agent no stored trace has, or an ambiguous one, is an InputError."""
        from cep_core.tracer.query import TraceFilter
        from cep_core.tracer.thresholds import resolve_agent

        key = resolve_agent(store, self.agent) if self.agent else None
        return TraceFilter(
            agent_type=key.agent_type if key else None,
            agent_name=key.agent_name if key else None,
            model=self.model,
            success=self.success,
            since=parse_time(self.since, self.label("since"), now=now),
        )


def _success(value: str) -> bool:
    if value.lower() not in _YES + _NO:
        raise InputError(f"success={value}: use yes or no", field="filter")
    return value.lower() in _YES


def parse_terms(text: str) -> FilterTerms:
    """`agent=planner model=gpt-4o success=no since=2026-05-01` -> FilterTerms; a bad word is an InputError
    naming it. The agent is checked against the store later, in `to_filter`."""
    values: dict[str, str | bool] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep or not value:
            raise InputError(f"filter {word!r}: write key=value ({', '.join(FILTER_KEYS)})", field="filter")
        if key not in FILTER_KEYS:
            raise InputError(
                f"unknown filter {key!r} in {word!r} (use {', '.join(FILTER_KEYS)})", field="filter"
            )
        values[key] = _success(value) if key == "success" else value
    terms = FilterTerms(**values)  # type: ignore[arg-type]  # keys are FILTER_KEYS, values checked above
    parse_time(terms.since, terms.label("since"), now=time.time())  # refuse a bad time now, not on each page
    return terms
