"""Tool calls in text: parse what a model meant, name every way it got the format wrong, render back.

Two formats exist in this project:
- target (what the CEP teaches): `<tool_call name="FUNC">{"arg": "value"}</tool_call>`, one tag per call;
- Hermes (the training data's, and many open models'):
  `<tool_call>\\n{"name": "FUNC", "arguments": {...}}\\n</tool_call>`, often with Python-literal dicts.

The parser is lenient: it recovers calls from fenced, self-closing, attribute-style, half-tagged,
bare-JSON and Python-call outputs, and reports each deviation as an ErrorCategory. It never raises.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cep_core.formats.jsonish import find_json_values, loads_lenient, strip_fences
from cep_core.formats.taxonomy import ErrorCategory as E


class CallFormat(StrEnum):
    TARGET = "target"
    HERMES = "hermes"


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class ToolCallParse:
    """What one output held: the calls recovered, every format error, and where the calls came from."""

    calls: list[ToolCall]
    errors: list[E]
    source: str  # target | hermes | mixed | json | python | none

    @property
    def format_ok(self) -> bool:
        return not self.errors


# An opening tag whose attribute values may hold '>' inside quotes; a loose form catches the rest.
_ATTR = r"""\s+[A-Za-z_:][-\w:.]*\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>/]+)"""
_OPEN = re.compile(
    rf"<tool_call(?P<attrs>(?:{_ATTR})*)\s*(?P<self>/?)>|<tool_call\b(?P<loose>[^>]*?)(?P<lself>/?)>"
)
_CLOSE = re.compile(r"</tool_call\s*>")
_ATTR_PAIR = re.compile(r"""([A-Za-z_:][-\w:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>/]+))""")
_DECODER = json.JSONDecoder()
_PY_CALL_START = re.compile(r"^\[?\s*[A-Za-z_][\w.]*\s*\(")
MAX_PY_CALL_CHARS = 20_000


def parse_tool_calls(text: Any, expected: CallFormat | str = CallFormat.TARGET) -> ToolCallParse:
    """Recover the tool calls in `text` and report every format error that applies."""
    expected = CallFormat(expected)
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    errors: dict[E, None] = {}
    if "<tool_call" in text or "</tool_call" in text:
        calls, sources = _parse_tagged(text, errors)
    else:
        calls, sources = _parse_untagged(text, errors)
    if calls or sources:
        if expected is CallFormat.TARGET and (
            "hermes" in sources or "json" in sources or "python" in sources
        ):
            errors[E.WRONG_FORMAT] = None
        if expected is CallFormat.HERMES and ("target" in sources or "python" in sources):
            errors[E.WRONG_FORMAT] = None
    source = "none" if not sources else (sources.pop() if len(sources) == 1 else "mixed")
    return ToolCallParse(calls=calls, errors=list(errors), source=source)


def _parse_tagged(text: str, errors: dict[E, None]) -> tuple[list[ToolCall], set[str]]:
    body_text, fenced = strip_fences(text)
    if fenced:
        errors[E.MARKDOWN_WRAPPER] = None
    calls: list[ToolCall] = []
    sources: set[str] = set()
    outside: list[str] = []
    pos = 0
    while True:
        nxt_open = _OPEN.search(body_text, pos)
        nxt_close = _CLOSE.search(body_text, pos)
        if nxt_open is None and nxt_close is None:
            break
        if nxt_open is None or (nxt_close is not None and nxt_close.start() < nxt_open.start()):
            # A closing tag with no opening tag before it: the call is whatever JSON precedes it.
            errors[E.MISSING_OPEN_TAG] = None
            segment = body_text[pos : nxt_close.start()]
            values = find_json_values(segment, "{")
            if values:
                start, _end, _value = values[-1]
                outside.append(segment[:start])
                _calls_from_hermes_body(segment[start:], errors, calls, sources)
            else:
                outside.append(segment)
            pos = nxt_close.end()
            continue
        outside.append(body_text[pos : nxt_open.start()])
        attrs = _attributes(nxt_open)
        if nxt_open.group("self") or nxt_open.group("lself"):
            errors[E.SELF_CLOSING_TAG] = None
            body, pos = "", nxt_open.end()
        else:
            body, pos = _tag_body(body_text, nxt_open.end(), errors)
        if "name" in attrs:
            _call_from_target_tag(attrs, body, errors, calls, sources)
        else:
            _calls_from_hermes_body(body, errors, calls, sources)
    outside.append(body_text[pos:])
    if any(part.strip() for part in outside):
        errors[E.PROSE_AROUND_OUTPUT] = None
    return calls, sources


def _tag_body(text: str, after: int, errors: dict[E, None]) -> tuple[str, int]:
    """The body of an opening tag and where scanning resumes.

    A JSON body is read with the JSON decoder first, so a tag written inside a string value does not end
    the body; otherwise the body runs to the next closing tag, or (missing close) to the next opening tag.
    """
    first = len(text) - len(text[after:].lstrip())
    if first < len(text) and text[first] in "{[":
        try:
            _value, end = _DECODER.raw_decode(text, first)
        except (ValueError, RecursionError):
            end = -1
        if end > 0:
            close = _CLOSE.match(text, len(text) - len(text[end:].lstrip()))
            if close:
                return text[after:end], close.end()
    nxt_close = _CLOSE.search(text, after)
    nxt_open = _OPEN.search(text, after)
    following_open = nxt_open.start() if nxt_open else len(text)
    if nxt_close and nxt_close.start() < following_open:
        return text[after : nxt_close.start()], nxt_close.end()
    errors[E.MISSING_CLOSE_TAG] = None
    return text[after:following_open], following_open


def _attributes(match: re.Match[str]) -> dict[str, str]:
    raw = match.group("attrs") if match.group("attrs") is not None else (match.group("loose") or "")
    out: dict[str, str] = {}
    for key, dq, sq, bare in _ATTR_PAIR.findall(raw):
        out[key.lower()] = dq or sq or bare
    return out


def _call_from_target_tag(
    attrs: dict[str, str], body: str, errors: dict[E, None], calls: list[ToolCall], sources: set[str]
) -> None:
    name = attrs["name"].strip()
    sources.add("target")
    raw_args = body.strip()
    if "arguments" in attrs:
        errors[E.ARGUMENTS_ATTRIBUTE] = None
        if not raw_args:
            raw_args = attrs["arguments"].strip()
    if not raw_args:
        calls.append(ToolCall(name, {}))
        return
    value, strict = loads_lenient(raw_args)
    if value is None:
        # Maybe prose or several values inside the tag: take the first object there.
        values = find_json_values(raw_args, "{")
        value = values[0][2] if values else None
        strict = False
        if value is not None and raw_args[: values[0][0]].strip() + raw_args[values[0][1] :].strip():
            errors[E.PROSE_AROUND_OUTPUT] = None
    if not strict:
        errors[E.INVALID_JSON] = None
    if isinstance(value, dict):
        inner = value.get("arguments", value.get("parameters"))
        if set(value) <= {"name", "arguments", "parameters"} and "name" in value and inner is not None:
            # Hermes JSON inside a target tag: take its arguments, note the mix.
            errors[E.WRONG_FORMAT] = None
            value = _arguments_value(inner, errors)
        calls.append(ToolCall(name, value if isinstance(value, dict) else {}))
    else:
        calls.append(ToolCall(name, {}))


def _calls_from_hermes_body(
    body: str, errors: dict[E, None], calls: list[ToolCall], sources: set[str]
) -> None:
    raw = body.strip()
    value, strict = loads_lenient(raw) if raw else (None, False)
    if value is None and raw:
        values = find_json_values(raw, "{[")
        if values:
            value = values[0][2]
            strict = False
            if raw[: values[0][0]].strip() or raw[values[0][1] :].strip():
                errors[E.PROSE_AROUND_OUTPUT] = None
    if not strict:
        errors[E.INVALID_JSON] = None
    before = len(calls)
    for item in value if isinstance(value, list) else [value]:
        call = _call_from_object(item, errors)
        if call is not None:
            calls.append(call)
    if len(calls) > before:
        sources.add("hermes")
    elif value is not None:
        errors[E.WRONG_FORMAT] = None  # JSON, but not a call object
    elif raw:
        errors[E.INVALID_JSON] = None


def _call_from_object(obj: Any, errors: dict[E, None]) -> ToolCall | None:
    """A call from `{"name": ..., "arguments": ...}` (also `parameters`, or OpenAI's `function` wrapper)."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict) and "name" not in obj:
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    return ToolCall(name.strip(), _arguments_value(args, errors))


def _arguments_value(args: Any, errors: dict[E, None]) -> dict[str, Any]:
    if isinstance(args, str):  # OpenAI style: arguments as a JSON string
        parsed, strict = loads_lenient(args) if args.strip() else ({}, True)
        if not strict:
            errors[E.INVALID_JSON] = None
        args = parsed
    if isinstance(args, dict):
        return args
    if args is not None:
        errors[E.INVALID_JSON] = None
    return {}


def _parse_untagged(text: str, errors: dict[E, None]) -> tuple[list[ToolCall], set[str]]:
    """No tags at all: bare JSON calls, or Python call syntax (BFCL's own prompt format)."""
    body_text, fenced = strip_fences(text)
    calls: list[ToolCall] = []
    local_errors: dict[E, None] = {}
    for start, end, value in find_json_values(body_text):
        items = value if isinstance(value, list) else [value]
        found = [c for c in (_call_from_object(item, local_errors) for item in items) if c is not None]
        if found:
            calls.extend(found)
            if body_text[:start].strip() or body_text[end:].strip():
                local_errors[E.PROSE_AROUND_OUTPUT] = None
            break
    if calls:
        errors.update(local_errors)
        if fenced:
            errors[E.MARKDOWN_WRAPPER] = None
        return calls, {"json"}
    py_calls = _python_calls(body_text.strip())
    if py_calls:
        if fenced:
            errors[E.MARKDOWN_WRAPPER] = None
        return py_calls, {"python"}
    return [], set()


def _python_calls(text: str) -> list[ToolCall]:
    if not text or len(text) > MAX_PY_CALL_CHARS or not _PY_CALL_START.match(text):
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    node = tree.body
    nodes = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
    calls: list[ToolCall] = []
    for item in nodes:
        if not isinstance(item, ast.Call):
            return []
        name = _dotted_name(item.func)
        if name is None:
            return []
        args: dict[str, Any] = {}
        for kw in item.keywords:
            if kw.arg is None:
                continue
            try:
                args[kw.arg] = _to_json(ast.literal_eval(kw.value))
            except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                args[kw.arg] = ast.unparse(kw.value) if hasattr(ast, "unparse") else None
        calls.append(ToolCall(name, args))
    return calls


def _dotted_name(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple | list | set | frozenset):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, complex | bytes):
        return str(value)
    return value


def render_target(calls: list[ToolCall]) -> str:
    """`<tool_call name="f">{json}</tool_call>`, one line per call."""
    return "\n".join(
        f'<tool_call name="{c.name}">{json.dumps(c.arguments, ensure_ascii=False)}</tool_call>' for c in calls
    )


def render_hermes(calls: list[ToolCall]) -> str:
    """Hermes tags with strict JSON inside (the dataset writes Python literals; we write JSON)."""
    return "\n".join(
        "<tool_call>\n"
        + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
        + "\n</tool_call>"
        for c in calls
    )


def render(calls: list[ToolCall], fmt: CallFormat | str = CallFormat.TARGET) -> str:
    return render_target(calls) if CallFormat(fmt) is CallFormat.TARGET else render_hermes(calls)
