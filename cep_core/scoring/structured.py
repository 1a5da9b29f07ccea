"""The structured track: JSON flattened to typed (path, value) leaves, compared as multisets."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cep_core.data.evalset import EvalExample
from cep_core.formats.structured import parse_structured
from cep_core.formats.taxonomy import ErrorCategory
from cep_core.scoring.result import ExampleScore, f1_score, is_format_error, precision_recall

E = ErrorCategory


def json_leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(path, typed value) for every leaf; empty objects and lists are leaves of their own."""
    if isinstance(value, dict):
        if not value:
            return [(path, ("object",))]
        out: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []
        for key, item in value.items():
            out.extend(json_leaves(item, path + (str(key),)))
        return out
    if isinstance(value, list):
        if not value:
            return [(path, ("array",))]
        out = []
        for index, item in enumerate(value):
            out.extend(json_leaves(item, path + (index,)))
        return out
    return [(path, _typed(value))]


def _typed(value: Any) -> tuple[Any, ...]:
    # bool before int: True is not 1 here; 1 and 1.0 are the same number.
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if value is None:
        return ("null",)
    return ("string", str(value))


def score_structured(
    example: EvalExample, output: str, missing: bool = False, strict: bool = False
) -> ExampleScore:
    parsed = parse_structured(output)
    errors: dict[str, None] = {str(e): None for e in parsed.errors}
    if not parsed.recovered or (strict and parsed.errors):
        expected_leaves = json_leaves(example.expected)
        return ExampleScore(
            example.id,
            example.category,
            False,
            0.0,
            0.0,
            0.0,
            list(errors),
            False,
            predicted=0,
            expected=len(expected_leaves),
            missing=missing,
        )
    predicted = Counter(json_leaves(parsed.value))
    expected = Counter(json_leaves(example.expected))
    matched = sum((predicted & expected).values())
    precision, recall = precision_recall(matched, sum(predicted.values()), sum(expected.values()))
    if example.schema:
        _schema_errors(example.schema, parsed.value, errors)
    correct = predicted == expected
    if not correct and not any(not is_format_error(e) for e in errors):
        errors[E.WRONG_VALUE] = None
    return ExampleScore(
        example.id,
        example.category,
        correct,
        f1_score(precision, recall),
        precision,
        recall,
        list(errors),
        format_ok=not parsed.errors,
        value=parsed.value,
        matched=matched,
        predicted=sum(predicted.values()),
        expected=sum(expected.values()),
        missing=missing,
    )


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _schema_errors(schema: dict[str, Any], value: Any, errors: dict[str, None]) -> None:
    """Top-level schema checks that name a cause: unknown fields, missing required ones, wrong types."""
    properties = schema.get("properties")
    if not isinstance(value, dict) or not isinstance(properties, dict):
        return
    if any(key not in properties for key in value):
        errors[E.PARAM_NAME_MISMATCH] = None
    if any(req not in value for req in schema.get("required") or ()):
        errors[E.MISSING_REQUIRED_PARAM] = None
    for key, item in value.items():
        kind = properties.get(key, {}).get("type") if isinstance(properties.get(key), dict) else None
        allowed = _JSON_TYPES.get(kind) if isinstance(kind, str) else None
        if allowed and (not isinstance(item, allowed) or (isinstance(item, bool) and bool not in allowed)):
            errors[E.WRONG_TYPE] = None
