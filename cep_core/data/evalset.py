"""Evaluation examples, from BFCL files or from the project's own eval format, in one shape.

The project's own format is JSON Lines, one example per line:

    {"id": "weather-1", "messages": [{"role": "user", "content": "Weather in Paris?"}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {...}}}],
     "expected_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}

    {"id": "invoice-1", "messages": [...], "schema": {...}, "expected": {"total": 12.5}}

A toolcall example may give BFCL's `ground_truth` (acceptable values per parameter) instead of
`expected_calls` (exact values); `"expected_calls": []` means that no call is the right answer. `rule` may
name BFCL's rule (simple, multiple, parallel, irrelevance, relevance); the default is parallel (order-free) for
expected calls and irrelevance for none. `category` groups examples in reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.data import bfcl
from cep_core.errors import InputError
from cep_core.prompts.toolprompt import function_of

TRACKS = ("toolcall", "structured")
RULES = ("simple", "multiple", "parallel", "irrelevance", "relevance")


@dataclass(slots=True)
class EvalExample:
    id: str
    track: str
    category: str
    messages: list[dict[str, Any]]
    rule: str = "parallel"
    functions: list[dict[str, Any]] = field(default_factory=list)  # bare function descriptions
    answers: list[dict[str, dict[str, list[Any]]]] | None = None  # BFCL possible-answer form
    schema: dict[str, Any] | None = None
    expected: Any = None


def load_examples(path: str | Path, track: str = "toolcall") -> list[EvalExample]:
    """Examples of one track from a BFCL question file, a folder of them, or an eval-format JSONL file."""
    if track not in TRACKS:
        raise InputError(f"unknown track {track!r}: use one of {', '.join(TRACKS)}")
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json*") if bfcl.is_bfcl_file(p) or p.suffix == ".jsonl")
        if not files:
            raise InputError("no BFCL_*.json or *.jsonl files in this folder", path=path)
        examples: list[EvalExample] = []
        for file in files:
            examples.extend(load_examples(file, track))
        _check_unique(examples, path)
        return examples
    if not path.exists():
        raise InputError("no such file", path=path)
    if bfcl.is_bfcl_file(path):
        if track != "toolcall":
            raise InputError(
                "BFCL files are scored on the toolcall track; the structured track reads the "
                "project's eval format (messages, schema, expected)",
                path=path,
            )
        return [_from_bfcl(e) for e in bfcl.load_bfcl(path)]
    examples = [_from_row(row, path, lineno, track) for lineno, row in bfcl.read_jsonl(path)]
    _check_unique(examples, path)
    return examples


def _check_unique(examples: list[EvalExample], path: Path) -> None:
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise InputError(f"duplicate example id {ex.id!r}", path=path)
        seen.add(ex.id)


def _from_bfcl(entry: bfcl.BfclEntry) -> EvalExample:
    return EvalExample(
        id=entry.id,
        track="toolcall",
        category=entry.category,
        messages=entry.messages,
        rule=bfcl.rule_for(entry.category),
        functions=entry.functions,
        answers=entry.ground_truth,
    )


def _from_row(row: dict[str, Any], path: Path, lineno: int, track: str) -> EvalExample:
    def fail(message: str, fld: str | None = None) -> InputError:
        return InputError(message, path=path, line=lineno, field=fld)

    if "id" not in row:
        raise fail("every example needs an 'id'", "id")
    messages = row.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise fail("'messages' must be a list of {role, content} objects", "messages")
    row_track = row.get("track") or ("structured" if "expected" in row or "schema" in row else "toolcall")
    if row_track != track:
        raise fail(f"this is a {row_track} example but the {track} track was asked for", "track")
    category = str(row.get("category") or path.stem)
    if track == "structured":
        if "expected" not in row:
            raise fail("a structured example needs 'expected' (the reference JSON)", "expected")
        schema = row.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise fail("'schema' must be a JSON object", "schema")
        return EvalExample(
            str(row["id"]),
            track,
            category,
            messages,
            rule="structured",
            schema=schema,
            expected=row["expected"],
        )
    tools = row.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise fail("'tools' must be a list of function descriptions", "tools")
    functions = [function_of(t) for t in tools]
    if "ground_truth" in row:
        answers = row["ground_truth"]
        if not isinstance(answers, list) or not all(
            isinstance(a, dict) and len(a) == 1 and all(isinstance(v, dict) for v in a.values())
            for a in answers
        ):
            raise fail(
                "'ground_truth' must be a list of {function: {param: [acceptable values]}}", "ground_truth"
            )
    elif "expected_calls" in row:
        answers = []
        for i, call in enumerate(row["expected_calls"] or []):
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise fail(f"expected_calls[{i}] needs a 'name'", "expected_calls")
            args = call.get("arguments", {})
            if not isinstance(args, dict):
                raise fail(f"expected_calls[{i}].arguments must be an object", "expected_calls")
            answers.append({call["name"]: {k: [v] for k, v in args.items()}})
    else:
        raise fail("a toolcall example needs 'expected_calls' (or BFCL's 'ground_truth')", "expected_calls")
    rule = row.get("rule") or ("parallel" if answers else "irrelevance")
    if rule not in RULES:
        raise fail(f"unknown rule {rule!r}: use one of {', '.join(RULES)}", "rule")
    return EvalExample(
        str(row["id"]), track, category, messages, rule=rule, functions=functions, answers=answers
    )
