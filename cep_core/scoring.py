"""The metric definitions, in one place (README: "Metrics").

- BFCL accuracy: an example is correct when its calls pass BFCL's AST checker for its category
  (`bfcl_checker.check_example`). `strict_accuracy` also requires a format-clean output.
- Toolcall F1: predicted calls matched one-to-one to expected calls by an optimal matching (a pair matches
  when BFCL's checker accepts the call for that answer); P = matched / predicted, R = matched / expected;
  an example with no expected and no predicted call scores 1. Macro average over examples, and micro.
- Argument F1: over (function, argument, value) triples of paired calls; a predicted argument counts when
  the checker accepts its value; expected arguments are the answer's mandatory ones plus optional ones the
  prediction gave correctly.
- Structured F1: predicted and reference JSON flattened to (path, value) leaves, list items keeping their
  index; P, R and F1 on the multisets of leaves per example, macro-averaged; unparseable output scores 0.
- Format compliance: the share of outputs with no format-class error; on the toolcall track an output
  with no call where one was expected does not comply either (it answered in text, not in the format).

By default an output is scored on what the lenient parsers recover (a fenced JSON still has its fields
compared), and format errors are counted apart; `strict=True` scores any output with a format error as
unparseable, for the reading where a caller would have rejected it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cep_core import baselines
from cep_core.bfcl_checker import check_example, check_param, find_description
from cep_core.evalset import EvalExample
from cep_core.structured import parse_structured
from cep_core.taxonomy import FORMAT_ERRORS, ErrorCategory
from cep_core.toolcalls import CallFormat, ToolCall, parse_tool_calls

E = ErrorCategory
_MAX_EXACT_ASSIGNMENT = 10  # beyond this many expected calls, pair greedily


@dataclass(slots=True)
class ExampleScore:
    """One example's verdict: what examples.jsonl holds, plus the counts the aggregate needs."""

    id: str
    category: str
    correct: bool
    f1: float
    precision: float
    recall: float
    errors: list[str]
    format_ok: bool
    calls: list[ToolCall] = field(default_factory=list)
    value: Any = None  # structured track: the JSON recovered
    matched: int = 0
    predicted: int = 0
    expected: int = 0
    arg_matched: int = 0
    arg_predicted: int = 0
    arg_expected: int = 0
    missing: bool = False  # no prediction was given for this example

    @property
    def argument_f1(self) -> float:
        return _f1(*_pr(self.arg_matched, self.arg_predicted, self.arg_expected))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "correct": self.correct,
            "f1": round(self.f1, 6),
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "errors": self.errors,
            "format_ok": self.format_ok,
        }
        if self.value is not None:
            out["value"] = self.value
        out["calls"] = [c.to_dict() for c in self.calls]
        if self.missing:
            out["missing_prediction"] = True
        return out


def _pr(matched: int, predicted: int, expected: int) -> tuple[float, float]:
    precision = matched / predicted if predicted else (1.0 if expected == 0 else 0.0)
    recall = matched / expected if expected else (1.0 if predicted == 0 else 0.0)
    return precision, recall


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


# ---------------------------------------------------------------- toolcall track


def score_toolcall(
    example: EvalExample,
    output: str,
    expected_format: CallFormat = CallFormat.TARGET,
    missing: bool = False,
    strict: bool = False,
) -> ExampleScore:
    parsed = parse_tool_calls(output, expected_format)
    # Strict: an output with any format error counts as one the caller could not parse.
    calls = [] if strict and parsed.errors else parsed.calls
    errors: dict[str, None] = {str(e): None for e in parsed.errors}
    verdict = check_example(example.rule, example.functions, calls, example.answers)
    answers = example.answers or []
    rule = example.rule

    _signature_errors(example.functions, calls, errors)
    if rule == "irrelevance":
        if calls:
            errors[E.SPURIOUS_CALL] = None
        matched, n_pred, n_exp = 0, len(calls), 0
        arg_m, arg_p, arg_e = 0, sum(len(c.arguments) for c in calls), 0
    elif rule == "relevance":
        # "Some call" is the answer: the example is matched when there is one.
        if not calls:
            errors[E.NO_CALL] = None
        matched = n_pred = 1 if calls else 0
        n_exp = 1
        arg_m = arg_p = arg_e = 0
    else:
        if not calls:
            errors[E.NO_CALL] = None
        elif len(calls) != len(answers):
            errors[E.WRONG_CALL_COUNT] = None
        matched, arg_m, arg_p, arg_e, content = _match_calls(example.functions, calls, answers)
        errors.update(content)
        n_pred, n_exp = len(calls), len(answers)
    if not verdict.valid and not any(not _is_format(e) for e in errors):
        # BFCL rejected it for a reason our pairing did not name (e.g. `multiple` checks only the first call).
        errors[_error_from_verdict(verdict.error_type)] = None
    precision, recall = _pr(matched, n_pred, n_exp)
    # A call was asked for and none came: the output did not take the format at all (text instead of a tag).
    expects_call = rule == "relevance" or (rule != "irrelevance" and bool(answers))
    return ExampleScore(
        id=example.id,
        category=example.category,
        correct=verdict.valid,
        f1=_f1(precision, recall),
        precision=precision,
        recall=recall,
        errors=list(errors),
        format_ok=not parsed.errors and not (expects_call and not parsed.calls),
        calls=calls,
        matched=matched,
        predicted=n_pred,
        expected=n_exp,
        arg_matched=arg_m,
        arg_predicted=arg_p,
        arg_expected=arg_e,
        missing=missing,
    )


def _is_format(category: str) -> bool:
    return category in _FORMAT_VALUES


_FORMAT_VALUES = frozenset(str(e) for e in FORMAT_ERRORS)


def _error_from_verdict(error_type: str) -> str:
    if error_type.startswith("type_error"):
        return E.WRONG_TYPE
    if "wrong_count" in error_type:
        return E.WRONG_CALL_COUNT
    if "wrong_func_name" in error_type or "missing_description" in error_type:
        return E.UNKNOWN_FUNCTION
    if "missing" in error_type:
        return E.MISSING_REQUIRED_PARAM
    return E.WRONG_VALUE


def _signature_errors(
    functions: list[dict[str, Any]], calls: list[ToolCall], errors: dict[str, None]
) -> None:
    """Errors a call has against the offered signatures alone, whatever the answer."""
    for call in calls:
        description = find_description(functions, call.name)
        if description is None:
            errors[E.UNKNOWN_FUNCTION] = None
            continue
        parameters = description.get("parameters") or {}
        properties = parameters.get("properties") or {}
        if any(arg not in properties for arg in call.arguments):
            errors[E.PARAM_NAME_MISMATCH] = None
        if any(req not in call.arguments for req in parameters.get("required") or ()):
            errors[E.MISSING_REQUIRED_PARAM] = None


def _pair_weight(
    functions: list[dict[str, Any]], call: ToolCall, answer: dict[str, Any]
) -> tuple[bool, int, int, dict[str, None]]:
    """(full match, accepted args, expected args, content errors) of one predicted call against one answer.

    `full` is BFCL's check_call verdict, derived from the same per-argument checks so each runs once.
    """
    name, possible = next(iter(answer.items()))
    errors: dict[str, None] = {}
    if call.name != name:
        return False, 0, 0, errors
    description = find_description(functions, name)
    parameters = (description or {}).get("parameters") or {}
    properties = parameters.get("properties") or {}
    full = description is not None and all(req in call.arguments for req in parameters.get("required") or ())
    accepted = 0
    expected = sum(1 for acceptable in possible.values() if "" not in acceptable)
    for param, value in call.arguments.items():
        if param not in possible or param not in properties:
            full = False
            if param in properties:
                errors[E.WRONG_VALUE] = None  # in the schema but the answer says it should not be given
            continue
        error_type = check_param(properties[param], value, possible[param])
        if not error_type:
            accepted += 1
            if "" in possible[param]:
                expected += 1  # an optional argument given correctly counts on both sides
        else:
            full = False
            errors[E.WRONG_TYPE if error_type.startswith("type_error") else E.WRONG_VALUE] = None
    for param, acceptable in possible.items():
        if param not in call.arguments and "" not in acceptable:
            full = False
            errors[E.MISSING_REQUIRED_PARAM] = None
    return full, accepted, expected, errors


def _match_calls(
    functions: list[dict[str, Any]], calls: list[ToolCall], answers: list[dict[str, Any]]
) -> tuple[int, int, int, int, dict[str, None]]:
    """Optimal one-to-one pairing: most full matches first, then most accepted arguments.

    Returns (matched calls, matched args, predicted args, expected args, content errors of paired calls).
    """
    arg_predicted = sum(len(c.arguments) for c in calls)
    unpaired_expected = [sum(1 for a in next(iter(ans.values())).values() if "" not in a) for ans in answers]
    if not calls or not answers:
        return 0, 0, arg_predicted, sum(unpaired_expected), {}
    table = [[_pair_weight(functions, call, ans) for ans in answers] for call in calls]
    # A full match outweighs any set of partial pairs; any same-name pair beats leaving a call unpaired.
    big = (1 + max(len(c.arguments) for c in calls)) * len(calls) + 1
    weights = [
        [
            (big * cell[0] + cell[1] + 1) if calls[i].name == next(iter(answers[j])) else -1
            for j, cell in enumerate(row)
        ]
        for i, row in enumerate(table)
    ]
    pairs = _assign(weights)
    matched = arg_matched = 0
    arg_expected = sum(unpaired_expected)
    errors: dict[str, None] = {}
    for i, j in pairs:
        full, accepted, expected, cell_errors = table[i][j]
        matched += full
        arg_matched += accepted
        arg_expected += expected - unpaired_expected[j]
        if not full:
            errors.update(cell_errors)
    return matched, arg_matched, arg_predicted, arg_expected, errors


def _assign(weights: list[list[int]]) -> list[tuple[int, int]]:
    """Pairs (row, col) maximising the total weight; negative weights never pair."""
    n, m = len(weights), len(weights[0])
    if n == 1:
        j = max(range(m), key=lambda c: weights[0][c])
        return [(0, j)] if weights[0][j] >= 0 else []
    if m > _MAX_EXACT_ASSIGNMENT:
        return _assign_greedy(weights)
    # DP over the set of used columns: best[mask] = (total, pairs) after the rows seen so far.
    best: dict[int, tuple[int, list[tuple[int, int]]]] = {0: (0, [])}
    for i in range(n):
        nxt: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        for mask, (total, pairs) in best.items():
            if mask not in nxt or nxt[mask][0] < total:
                nxt[mask] = (total, pairs)
            for j in range(m):
                w = weights[i][j]
                if w < 0 or mask >> j & 1:
                    continue
                key = mask | 1 << j
                if key not in nxt or nxt[key][0] < total + w:
                    nxt[key] = (total + w, pairs + [(i, j)])
        best = nxt
    return max(best.values(), key=lambda item: item[0])[1]


def _assign_greedy(weights: list[list[int]]) -> list[tuple[int, int]]:
    cells = sorted(
        ((w, i, j) for i, row in enumerate(weights) for j, w in enumerate(row) if w >= 0), reverse=True
    )
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for _w, i, j in cells:
        if i not in used_rows and j not in used_cols:
            used_rows.add(i)
            used_cols.add(j)
            pairs.append((i, j))
    return pairs


# ---------------------------------------------------------------- structured track


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
    precision, recall = _pr(matched, sum(predicted.values()), sum(expected.values()))
    if example.schema:
        _schema_errors(example.schema, parsed.value, errors)
    correct = predicted == expected
    if not correct and not any(not _is_format(e) for e in errors):
        errors[E.WRONG_VALUE] = None
    return ExampleScore(
        example.id,
        example.category,
        correct,
        _f1(precision, recall),
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


# ---------------------------------------------------------------- aggregate


def score_example(
    example: EvalExample,
    output: str | None,
    expected_format: CallFormat = CallFormat.TARGET,
    strict: bool = False,
) -> ExampleScore:
    missing = output is None
    text = output or ""
    if example.track == "structured":
        return score_structured(example, text, missing, strict)
    return score_toolcall(example, text, expected_format, missing, strict)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _strict_f1(track: str, score: ExampleScore) -> float:
    if score.format_ok:
        return score.f1
    return 1.0 if track == "toolcall" and score.expected == 0 else 0.0


def aggregate(track: str, scores: Iterable[ExampleScore]) -> dict[str, Any]:
    """results.json: the track's figures, error counts, per-category figures and the baseline deltas."""
    scores = list(scores)
    n = len(scores)
    micro_p, micro_r = _pr(
        sum(s.matched for s in scores), sum(s.predicted for s in scores), sum(s.expected for s in scores)
    )
    arg_p, arg_r = _pr(
        sum(s.arg_matched for s in scores),
        sum(s.arg_predicted for s in scores),
        sum(s.arg_expected for s in scores),
    )
    errors = Counter(e for s in scores for e in s.errors)
    f1_macro = _mean([s.f1 for s in scores])
    by_category: dict[str, dict[str, Any]] = {}
    for category in sorted({s.category for s in scores}):
        group = [s for s in scores if s.category == category]
        by_category[category] = {
            "n": len(group),
            "accuracy": _mean([float(s.correct) for s in group]),
            "f1": _mean([s.f1 for s in group]),
            "format_compliance": _mean([float(s.format_ok) for s in group]),
        }
    missing = [s.id for s in scores if s.missing]
    results: dict[str, Any] = {
        "track": track,
        "n": n,
        "accuracy": _mean([float(s.correct) for s in scores]),
        "strict_accuracy": _mean([float(s.correct and s.format_ok) for s in scores]),
        "f1": {"macro": f1_macro, "micro": _f1(micro_p, micro_r)},
        # The macro F1 when every output with a format error counts as unparseable.
        "strict_f1": _mean([_strict_f1(track, s) for s in scores]),
        "precision": {"macro": _mean([s.precision for s in scores]), "micro": micro_p},
        "recall": {"macro": _mean([s.recall for s in scores]), "micro": micro_r},
        "format_compliance": _mean([float(s.format_ok) for s in scores]),
        "errors": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_category": by_category,
        "missing_predictions": len(missing),
        "missing_ids": missing[:50],
        "baseline": baselines.compare(track, f1_macro),
    }
    if track == "toolcall":
        results["argument_f1"] = {
            "macro": _mean([s.argument_f1 for s in scores]),
            "micro": _f1(arg_p, arg_r),
        }
    return results


def score_all(
    examples: list[EvalExample],
    outputs: dict[str, str],
    track: str,
    expected_format: CallFormat = CallFormat.TARGET,
    strict: bool = False,
) -> tuple[dict[str, Any], list[ExampleScore]]:
    """Score every example; an example without an output is scored as an empty output and reported."""
    scores = [score_example(ex, outputs.get(ex.id), expected_format, strict) for ex in examples]
    results = aggregate(track, scores)
    results["strict"] = strict
    return results, scores
