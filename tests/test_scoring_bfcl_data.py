"""BFCL verdicts on the real BFCL data: gold answers, perturbed answers, and BFCL's own checker as the oracle."""

from __future__ import annotations

import copy
import random
import sys
import types
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cep_core.data.bfcl import ANSWER_CATEGORIES, UNSATISFIABLE, gold_calls, load_bfcl, rule_for
from cep_core.data.evalset import load_examples
from cep_core.formats.toolcalls import ToolCall, render_target
from cep_core.scoring import score_example
from cep_core.scoring.bfcl_checker import check_example

BFCL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bfcl"
pytestmark = pytest.mark.skipif(
    not BFCL.is_dir(), reason="../shared/data/bfcl is absent (a user's clone has none)"
)

ANSWER_FILES = list(ANSWER_CATEGORIES)


def entries(category):
    return load_bfcl(BFCL / f"BFCL_v4_{category}.json")


@pytest.mark.parametrize("category", ANSWER_FILES)
def test_every_gold_answer_scores_correct(category):
    examples = {e.id: e for e in load_examples(BFCL / f"BFCL_v4_{category}.json")}
    failures = []
    ids = set(examples)
    for entry in entries(category):
        score = score_example(examples[entry.id], render_target(gold_calls(entry)))
        if not score.correct or score.f1 != 1.0 or score.errors:
            failures.append(entry.id)
    assert sorted(failures) == sorted(i for i in UNSATISFIABLE if i in ids)


@pytest.mark.parametrize("category", ["irrelevance", "live_irrelevance", "live_relevance"])
def test_categories_without_answers(category):
    examples = load_examples(BFCL / f"BFCL_v4_{category}.json")
    some_call = '<tool_call name="anything">{}</tool_call>'
    no_call = "I can't help with that using the tools I have."
    for ex in examples:
        if category == "live_relevance":
            assert score_example(ex, some_call).correct and not score_example(ex, no_call).correct
        else:
            assert score_example(ex, no_call).correct and not score_example(ex, some_call).correct


def _perturbations(entry):
    """(kind, calls) variants of the gold answer that BFCL must reject."""
    gold = gold_calls(entry)
    schemas = {f["name"]: f["parameters"] for f in entry.functions}
    first = gold[0]
    props = schemas[first.name]["properties"]
    required = schemas[first.name].get("required", [])
    out = []
    out.append(("wrong_name", [ToolCall(first.name + "_v2", first.arguments)] + gold[1:]))
    for param in required:
        if param in first.arguments:
            args = dict(first.arguments)
            del args[param]
            out.append(("missing_required", [ToolCall(first.name, args)] + gold[1:]))
            break
    out.append(("extra_param", [ToolCall(first.name, {**first.arguments, "zz_not_a_param": 1})] + gold[1:]))
    for param, value in first.arguments.items():
        kind = props.get(param, {}).get("type")
        if kind == "integer" and type(value) is int:
            out.append(
                ("float_for_int", [ToolCall(first.name, {**first.arguments, param: value + 0.5})] + gold[1:])
            )
            acceptable = entry.ground_truth[0][first.name][param]
            if value + 1000 not in acceptable:
                out.append(
                    (
                        "wrong_value",
                        [ToolCall(first.name, {**first.arguments, param: value + 1000})] + gold[1:],
                    )
                )
            break
        if kind == "string" and isinstance(value, str):
            out.append(
                ("wrong_value", [ToolCall(first.name, {**first.arguments, param: value + " zzq"})] + gold[1:])
            )
            break
    if rule_for(entry.category) == "parallel":
        out.append(("missing_call", gold[:-1]))
    return out


@pytest.mark.parametrize("category", ANSWER_FILES)
def test_perturbed_answers_score_incorrect(category):
    examples = {e.id: e for e in load_examples(BFCL / f"BFCL_v4_{category}.json")}
    seen = set()
    for entry in entries(category):
        if entry.id in UNSATISFIABLE:
            continue
        for kind, calls in _perturbations(entry):
            score = score_example(examples[entry.id], render_target(calls))
            assert not score.correct, (entry.id, kind, calls)
            assert score.errors, (entry.id, kind)
            seen.add(kind)
    assert {"wrong_name", "missing_required", "extra_param", "wrong_value"} <= seen


# ------------------------------------------------------------------ BFCL's own checker as the oracle


@pytest.fixture(scope="module")
def bfcl_ast_checker():
    """BFCL's published checker (pip package bfcl-eval, installed --no-deps by `make`), with its model table
    stubbed: the checker only consults it to rename dotted functions for some API models."""
    pytest.importorskip("bfcl_eval", reason="bfcl-eval is not installed (the Makefile installs it --no-deps)")
    saved = sys.modules.get("bfcl_eval.constants.model_config")
    stub = types.ModuleType("bfcl_eval.constants.model_config")
    stub.MODEL_CONFIG_MAPPING = defaultdict(lambda: SimpleNamespace(underscore_to_dot=False))
    sys.modules["bfcl_eval.constants.model_config"] = stub
    try:
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.eval_checker.ast_eval import ast_checker
    finally:
        if saved is not None:
            sys.modules["bfcl_eval.constants.model_config"] = saved
    return lambda *args: ast_checker.ast_checker(*args[:3], Language.PYTHON, args[3], "ours")


def _mutations(rng, entry):
    """Random edits of the gold answer, many of them near misses, some still correct."""
    gold = gold_calls(entry)
    variants = [gold]
    for _ in range(6):
        calls = copy.deepcopy(gold)
        i = rng.randrange(len(calls))
        call = calls[i]
        args = dict(call.arguments)
        props = next(f for f in entry.functions if f["name"] == call.name)["parameters"]["properties"]
        op = rng.choice(["drop", "int_float", "case", "str_num", "list_rev", "bool", "add_optional", "swap"])
        keys = list(args)
        if op == "drop" and keys:
            args.pop(rng.choice(keys))
        elif op == "int_float":
            for k, v in args.items():
                if type(v) is int:
                    args[k] = float(v)
                    break
                if type(v) is float and v == int(v):
                    args[k] = int(v)
                    break
        elif op == "case":
            for k, v in args.items():
                if isinstance(v, str):
                    args[k] = v.upper().replace(" ", "-")
                    break
        elif op == "str_num":
            for k, v in args.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    args[k] = str(v)
                    break
        elif op == "list_rev":
            for k, v in args.items():
                if isinstance(v, list) and len(v) > 1:
                    args[k] = list(reversed(v))
                    break
        elif op == "bool":
            for k, v in args.items():
                if isinstance(v, bool):
                    args[k] = int(v)
                    break
        elif op == "add_optional":
            missing = [p for p in props if p not in args]
            if missing:
                args[rng.choice(missing)] = ""
        elif op == "swap" and len(calls) > 1:
            calls[0], calls[-1] = calls[-1], calls[0]
        calls[i] = ToolCall(call.name, args) if op != "swap" else calls[i]
        variants.append(calls)
    return variants


@pytest.mark.parametrize("category", ANSWER_FILES)
def test_verdicts_equal_bfcl_checker_on_mutated_answers(category, bfcl_ast_checker):
    rng = random.Random(category)
    agree = disagree = valid_seen = invalid_seen = 0
    problems = []
    for entry in entries(category):
        for calls in _mutations(rng, entry):
            theirs = bfcl_ast_checker(
                entry.functions, [{c.name: c.arguments} for c in calls], entry.ground_truth, category
            )["valid"]
            ours = check_example(rule_for(category), entry.functions, calls, entry.ground_truth).valid
            valid_seen += theirs
            invalid_seen += not theirs
            if theirs == ours:
                agree += 1
            else:
                disagree += 1
                problems.append((entry.id, calls, theirs, ours))
    assert not problems, problems[:3]
    # The mutations must exercise both verdicts, or agreement would prove little.
    total = valid_seen + invalid_seen
    assert valid_seen >= total * 0.05 and invalid_seen >= total * 0.05, (valid_seen, invalid_seen)


def _all_answer_entries():
    if not BFCL.is_dir():
        return []
    return [e for c in ANSWER_FILES for e in entries(c) if e.id not in UNSATISFIABLE]


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3, allow_nan=False)
    | st.sampled_from(["", "celsius", "New York", "NY", "true", "5"])
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "unit", "name", "size"]), inner, max_size=2)
    ),
    max_leaves=5,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verdicts_equal_bfcl_checker_on_arbitrary_values(data, bfcl_ast_checker):
    if not _ANSWER_ENTRIES:
        pytest.skip("../shared/data/bfcl is absent")
    pool = _ANSWER_ENTRIES
    entry = pool[data.draw(st.integers(0, len(pool) - 1))]
    calls = gold_calls(entry)
    i = data.draw(st.integers(0, len(calls) - 1))
    call = calls[i]
    params = list(next(f for f in entry.functions if f["name"] == call.name)["parameters"]["properties"])
    param = data.draw(st.sampled_from(params + ["zz_unknown"]))
    value = data.draw(json_value | st.sampled_from(list(call.arguments.values()) or [None]))
    calls[i] = ToolCall(call.name, {**call.arguments, param: value})
    category = entry.category
    try:
        theirs = bfcl_ast_checker(
            entry.functions, [{c.name: c.arguments} for c in calls], entry.ground_truth, category
        )["valid"]
    except (AttributeError, TypeError, KeyError):
        event("BFCL crashed")
        return  # BFCL itself crashes on this value: it has no verdict to compare with
    event(f"BFCL verdict {theirs}")
    assert check_example(rule_for(category), entry.functions, calls, entry.ground_truth).valid == theirs


_ANSWER_ENTRIES = _all_answer_entries()
