"""The toolcall track: predicted calls paired one-to-one with the expected ones (an optimal assignment over
BFCL's per-argument verdicts), then precision, recall and argument F1."""

from __future__ import annotations

from typing import Any

from cep_core.data.evalset import EvalExample
from cep_core.formats.taxonomy import ErrorCategory
from cep_core.formats.toolcalls import CallFormat, ToolCall, parse_tool_calls
from cep_core.scoring.bfcl_checker import check_example, check_param, find_description
from cep_core.scoring.result import ExampleScore, f1_score, is_format_error, precision_recall

E = ErrorCategory
_MAX_EXACT_ASSIGNMENT = 10  # beyond this many expected calls, pair greedily


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
    if not verdict.valid and not any(not is_format_error(e) for e in errors):
        # BFCL rejected it for a reason our pairing did not name (e.g. `multiple` checks only the first call).
        errors[_error_from_verdict(verdict.error_type)] = None
    precision, recall = precision_recall(matched, n_pred, n_exp)
    # A call was asked for and none came: the output did not take the format at all (text instead of a tag).
    expects_call = rule == "relevance" or (rule != "irrelevance" and bool(answers))
    return ExampleScore(
        id=example.id,
        category=example.category,
        correct=verdict.valid,
        f1=f1_score(precision, recall),
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
    # Not scipy's linear_sum_assignment (benchmarks/assignment.py, 2-core shared x86_64, Python 3.11, scipy
    # 1.17): per matrix, 1x1 0.9 vs 4.9 us, 2x2 3.5 vs 5.7, 3x3 8.2 vs 6.2, 4x4 39 vs 7, 10x10 25.5 ms vs
    # 32 us; but importing scipy.optimize adds 1.3 s to the scorer's 0.36 s, and most examples have 1-2
    # calls. Worth revisiting only if many examples have 5 or more expected calls.
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
