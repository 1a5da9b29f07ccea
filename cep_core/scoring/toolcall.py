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
_MAX_DP_ASSIGNMENT = 6  # beyond this many calls on both sides, scipy's Hungarian method pairs them


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
    """Pairs (row, col) maximising the total weight; negative weights never pair. Always the optimum."""
    # Two exact methods, chosen by size (benchmarks/assignment.py, 2-core x86_64, Python 3.11, scipy 1.17,
    # per table): the DP is faster to 2x2 (0.6 vs 2.9 us at 1x1) and cheap to 6x6 (0.11 ms), and importing
    # scipy.optimize costs the scorer ~0.4 s; past 6 calls a side the DP's 2^m states grow (8x8 0.84 ms,
    # 12x12 48 ms, against 13 and 43 us), so the rare example that large goes to the Hungarian method.
    n, m = len(weights), len(weights[0])
    if n == 1:
        j = max(range(m), key=lambda c: weights[0][c])
        return [(0, j)] if weights[0][j] >= 0 else []
    if min(n, m) > _MAX_DP_ASSIGNMENT:
        return _assign_scipy(weights)
    if m > n:  # the DP's states are sets of columns: keep the smaller side there
        return [(i, j) for j, i in _assign([list(col) for col in zip(*weights, strict=True)])]
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


def _assign_scipy(weights: list[list[int]]) -> list[tuple[int, int]]:
    """The Hungarian method for large tables. A forbidden cell weighs 0 (as good as leaving both unpaired,
    so the optimum is unchanged) and is dropped from the answer."""
    from scipy.optimize import linear_sum_assignment

    table = [[max(w, 0) for w in row] for row in weights]
    rows, cols = linear_sum_assignment(table, maximize=True)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if weights[i][j] >= 0]
