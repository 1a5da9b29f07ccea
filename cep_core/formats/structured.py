"""Structured (JSON) outputs: recover the JSON a model meant and name every format error. Never raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cep_core.formats.jsonish import MISSING, find_json_values, loads_lenient, loads_strict, strip_fences
from cep_core.formats.taxonomy import ErrorCategory as E


@dataclass(slots=True)
class StructuredParse:
    """The JSON value recovered (when `recovered`) and the format errors of the output."""

    value: Any
    recovered: bool
    errors: list[E]

    @property
    def format_ok(self) -> bool:
        return self.recovered and not self.errors


def parse_structured(text: Any) -> StructuredParse:
    """Read one JSON value from a model's output: strictly first, then leniently."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    value = loads_strict(text)
    if value is not MISSING:
        return StructuredParse(value, True, [])
    errors: dict[E, None] = {}
    body, fenced = strip_fences(text)
    if fenced:
        errors[E.MARKDOWN_WRAPPER] = None
    body = body.strip()
    if not body:
        errors[E.INVALID_JSON] = None
        return StructuredParse(None, False, list(errors))
    value, strict = loads_lenient(body)
    if value is not None or strict:
        if not strict:
            errors[E.INVALID_JSON] = None
        return StructuredParse(value, True, list(errors))
    embedded = find_json_values(body)
    if embedded:
        # Prefer the first object; a lone list is taken when there is no object.
        start, end, value = next((v for v in embedded if isinstance(v[2], dict)), embedded[0])
        if body[:start].strip() or body[end:].strip():
            errors[E.PROSE_AROUND_OUTPUT] = None
        return StructuredParse(value, True, list(errors))
    first, last = body.find("{"), body.rfind("}")
    if 0 <= first < last:
        value, _ = loads_lenient(body[first : last + 1])
        if value is not None:
            errors[E.INVALID_JSON] = None
            if body[:first].strip() or body[last + 1 :].strip():
                errors[E.PROSE_AROUND_OUTPUT] = None
            return StructuredParse(value, True, list(errors))
    errors[E.INVALID_JSON] = None
    if first > 0 and body[:first].strip():
        errors[E.PROSE_AROUND_OUTPUT] = None
    return StructuredParse(None, False, list(errors))
