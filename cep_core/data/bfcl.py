"""BFCL data files: question entries, their possible answers, and the gold calls they imply.

Files are JSON Lines although they end in .json. Answers live in `possible_answer/<same name>` beside the
question file. The category comes from the file name (`BFCL_v4_simple_python.json` -> `simple_python`) and
decides the checking rule, as in BFCL itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.formats.toolcalls import ToolCall

_CATEGORY = re.compile(r"^BFCL_v\d+_(?P<cat>.+?)(?:_result|_score)?\.json$")
NO_ANSWER_CATEGORIES = ("irrelevance", "live_irrelevance", "live_relevance")
# The categories whose entries have possible answers (the AST checker's), in BFCL's order.
ANSWER_CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
# Entries of the shared BFCL v4 data that no output can pass under BFCL's own checker: the answer contradicts
# the function's schema. Gold-answer checks (tests, `cep eval` on gold predictions) expect exactly these to fail.
UNSATISFIABLE: dict[str, str] = {
    "live_multiple_862-181-3": "answer requires journey_start_time, which Trains_1_FindTrains does not declare",
    "live_multiple_964-207-0": "answer names 'question' but the schema requires 'statement'",
    "live_simple_106-63-0": "a required list parameter whose acceptable-value list is empty",
    "live_simple_112-68-0": "a required list parameter whose acceptable-value list is empty",
}


@dataclass(slots=True)
class BfclEntry:
    id: str
    category: str
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    ground_truth: list[dict[str, dict[str, list[Any]]]] | None


def category_of(path: str | Path) -> str:
    name = Path(path).name
    match = _CATEGORY.match(name)
    if match:
        return match.group("cat")
    return Path(path).stem


def rule_for(category: str) -> str:
    """BFCL's checker for a category: relevance, irrelevance, parallel, multiple or simple."""
    if "irrelevance" in category:
        return "irrelevance"
    if "relevance" in category:
        return "relevance"
    if "parallel" in category:
        return "parallel"
    if "multiple" in category:
        return "multiple"
    return "simple"


def answer_path(question_path: str | Path) -> Path:
    question_path = Path(question_path)
    return question_path.parent / "possible_answer" / question_path.name


def is_bfcl_file(path: str | Path) -> bool:
    return _CATEGORY.match(Path(path).name) is not None


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a malformed line is an InputError naming it."""
    path = Path(path)
    try:
        handle = path.open("rb")  # decoded line by line: a byte that is not UTF-8 is named with its line
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    rows: list[tuple[int, dict[str, Any]]] = []
    with handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"not UTF-8 text (byte {exc.start + 1} of the line is {raw[exc.start]:#04x}); "
                    "re-encode the file as UTF-8",
                    path=path,
                    line=lineno,
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                msg = getattr(exc, "msg", str(exc))
                col = getattr(exc, "colno", None)
                raise InputError(
                    f"malformed JSON: {msg}" + (f" (column {col})" if col else ""), path=path, line=lineno
                ) from None
            except RecursionError:
                raise InputError("malformed JSON: nested too deeply", path=path, line=lineno) from None
            if not isinstance(obj, dict):
                raise InputError("expected a JSON object on each line", path=path, line=lineno)
            rows.append((lineno, obj))
    return rows


def load_bfcl(path: str | Path) -> list[BfclEntry]:
    """Question entries of one BFCL file, with their answers where the category has them."""
    path = Path(path)
    category = category_of(path)
    answers: dict[str, list[dict[str, Any]]] = {}
    apath = answer_path(path)
    needs_answers = rule_for(category) not in ("irrelevance", "relevance")
    if needs_answers:
        if not apath.is_file():
            raise InputError(
                f"no answer file at {apath} (BFCL keeps answers in possible_answer/ beside the "
                "question file)",
                path=path,
            )
        for lineno, row in read_jsonl(apath):
            if "id" not in row or not isinstance(row.get("ground_truth"), list):
                raise InputError(
                    "an answer line needs 'id' and a 'ground_truth' list", path=apath, line=lineno
                )
            answers[str(row["id"])] = row["ground_truth"]
    entries: list[BfclEntry] = []
    for lineno, row in read_jsonl(path):
        for key in ("id", "question", "function"):
            if key not in row:
                raise InputError(
                    "a BFCL question line needs 'id', 'question' and 'function'",
                    path=path,
                    line=lineno,
                    field=key,
                )
        question = row["question"]
        turn = (
            question[0]
            if isinstance(question, list) and question and isinstance(question[0], list)
            else question
        )
        if not isinstance(turn, list):
            raise InputError(
                "'question' must be a list of turns of messages", path=path, line=lineno, field="question"
            )
        entry_id = str(row["id"])
        truth = answers.get(entry_id) if needs_answers else None
        if needs_answers and truth is None:
            raise InputError(f"no answer for id {entry_id!r} in {apath}", path=path, line=lineno)
        functions = row["function"] if isinstance(row["function"], list) else [row["function"]]
        entries.append(BfclEntry(entry_id, category, [dict(m) for m in turn], functions, truth))
    return entries


def gold_calls(entry: BfclEntry) -> list[ToolCall]:
    """The answer as calls, one acceptable value per parameter, chosen so that BFCL accepts them.

    A parameter is left out when it may be (its values include ""), unless the schema requires it: then it
    gets its first real value, or "" (an empty list for list types) when that is all the answer offers. A parameter the answer
    lists but the schema lacks is left out (BFCL rejects any argument outside the schema).
    """
    calls: list[ToolCall] = []
    schemas = {f.get("name"): f.get("parameters", {}) for f in entry.functions}
    for answer in entry.ground_truth or []:
        for name, params in answer.items():
            schema = schemas.get(name, {})
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            args: dict[str, Any] = {}
            for param, acceptable in params.items():
                if param not in props and "" in acceptable:
                    continue
                value = _first_acceptable(acceptable)
                if value is _OMIT and param in required:
                    # Only "" is offered: BFCL reads "" as an empty list for list types.
                    value = [] if props.get(param, {}).get("type") in ("array", "tuple") else ""
                if value is not _OMIT:
                    args[param] = _resolve_nested(value, props.get(param, {}))
            calls.append(ToolCall(name, args))
    return calls


_OMIT = object()


def _first_acceptable(acceptable: list[Any]) -> Any:
    return next((v for v in acceptable if v != ""), _OMIT)


def _resolve_nested(value: Any, schema: dict[str, Any]) -> Any:
    """Dict parameters hold, per key, a list of acceptable values (one level deep, as BFCL checks them)."""
    kind = schema.get("type")
    if kind == "dict" and isinstance(value, dict):
        return _resolve_dict(value)
    if kind == "array" and schema.get("items", {}).get("type") == "dict" and isinstance(value, list):
        return [_resolve_dict(v) if isinstance(v, dict) else v for v in value]
    return value


def _resolve_dict(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, acceptable in value.items():
        if not isinstance(acceptable, list):
            out[key] = acceptable
            continue
        chosen = _first_acceptable(acceptable)
        if chosen is not _OMIT:
            out[key] = chosen
    return out


def structured_case(entry: BfclEntry) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]] | None:
    """A simple entry as a structured-output task: (prompt messages, JSON schema, expected object) — the gold
    call's arguments as one JSON object. None when the entry has not exactly one function and one gold call."""
    from cep_core.prompts.toolprompt import structured_prompt, to_json_schema

    if rule_for(entry.category) != "simple" or len(entry.functions) != 1:
        return None
    calls = gold_calls(entry)
    if len(calls) != 1:
        return None
    function = entry.functions[0]
    schema = to_json_schema(function.get("parameters") or {})
    return structured_prompt(function, schema, entry.messages), schema, calls[0].arguments
