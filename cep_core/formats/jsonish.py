"""Lenient reading of JSON-like text: what models and datasets actually write.

Strict JSON first; then Python literals (the Hermes dataset writes `{'a': True}`); then small repairs
(trailing commas). Every function here returns a result instead of raising, whatever the input.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from typing import Any

# Beyond this size a Python-literal parse is not attempted: ast on huge input is slow and memory hungry.
MAX_LITERAL_CHARS = 200_000

_DECODER = json.JSONDecoder()
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
# A fence is a line of its own, or the very start or end of the text: JSON strings hold no raw newline,
# so a ``` inside a value is never taken for a fence.
_FENCE_LINE = re.compile(r"^[ \t]*```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?$", re.MULTILINE)
_FENCE_START = re.compile(r"\A\s*```[A-Za-z0-9_+-]*[ \t]*")
_FENCE_END = re.compile(r"[ \t]*```\s*\Z")
MISSING = object()


def loads_strict(text: str) -> Any:
    """json.loads that returns MISSING instead of raising."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError):
        return MISSING


def loads_lenient(text: str) -> tuple[Any, bool]:
    """Parse `text` as one JSON value, leniently.

    Returns (value, strict): `strict` is True when the text was valid JSON as it stands.
    value is None with strict False when nothing could be recovered.
    """
    value = loads_strict(text)
    if value is not MISSING:
        return value, True
    stripped = text.strip()
    if not stripped:
        return None, False
    if len(stripped) <= MAX_LITERAL_CHARS:
        try:
            with warnings.catch_warnings():  # model text such as "\[" is not our code's escape sequence
                warnings.simplefilter("ignore")
                value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError, OverflowError):
            value = MISSING
        if value is not MISSING and isinstance(value, dict | list | str | int | float | bool | tuple):
            return _jsonable(value), False
    repaired = _TRAILING_COMMA.sub(r"\1", stripped)
    if repaired != stripped:
        value = loads_strict(repaired)
        if value is not MISSING:
            return value, False
    return None, False


def _jsonable(value: Any) -> Any:
    """Tuples become lists and non-string keys become strings, as a JSON round trip would make them."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, complex | bytes):
        return str(value)
    return value


def find_json_values(text: str, openers: str = "{[") -> list[tuple[int, int, Any]]:
    """Every top-level JSON value embedded in `text`: (start, end, value), in order.

    Scans for an opening brace or bracket and lets the JSON decoder find where the value ends, so
    braces inside strings are handled correctly.
    """
    found: list[tuple[int, int, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        j = _next_opener(text, i, openers)
        if j < 0:
            break
        try:
            value, end = _DECODER.raw_decode(text, j)
        except (ValueError, RecursionError):
            i = j + 1
            continue
        found.append((j, end, value))
        i = end
    return found


def _next_opener(text: str, start: int, openers: str) -> int:
    best = -1
    for ch in openers:
        k = text.find(ch, start)
        if k >= 0 and (best < 0 or k < best):
            best = k
    return best


def strip_fences(text: str) -> tuple[str, bool]:
    """Remove ``` fence markers (with an optional language tag); report whether there were any."""
    if "```" not in text:
        return text, False
    stripped = _FENCE_END.sub("", _FENCE_START.sub("", _FENCE_LINE.sub("", text)))
    return stripped, stripped != text


def finite(value: Any) -> Any:
    """`value` with every non-finite float (NaN, infinities) nested in it made null: strict JSON for any reader
    (`Infinity` and `NaN`, which Python's json writes by default, are not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def strict_json(obj: Any, *, indent: int | None = None) -> str:
    """The one way the product writes JSON (files, progress lines, `--json` output): non-finite numbers as null
    (`finite`), text kept as UTF-8, and what JSON has no type for (a Path, a datetime) as its str()."""
    return json.dumps(finite(obj), indent=indent, ensure_ascii=False, default=str, allow_nan=False)
