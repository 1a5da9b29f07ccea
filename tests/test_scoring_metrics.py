"""Metric definitions: toolcall F1 (optimal matching), argument F1, structured F1, format compliance, baselines."""

from __future__ import annotations

from itertools import permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.data.evalset import EvalExample
from cep_core.formats.toolcalls import ToolCall, render_target
from cep_core.scoring import aggregate, json_leaves, score_all, score_example
from cep_core.scoring.toolcall import _MAX_DP_ASSIGNMENT, _assign, _assign_scipy

WEATHER = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
}


def toolcall_example(answers, rule="parallel", functions=(WEATHER, TIME), ex_id="x"):
    return EvalExample(ex_id, "toolcall", "test", [], rule=rule, functions=list(functions), answers=answers)


def weather(city, unit=None):
    return {"get_weather": {"city": [city], **({"unit": [unit]} if unit else {})}}


def out(*calls):
    return render_target([ToolCall(n, a) for n, a in calls])


def test_perfect_parallel_answer_in_any_order():
    ex = toolcall_example([weather("Oslo"), weather("Rome")])
    score = score_example(ex, out(("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Oslo"})))
    assert score.correct and score.f1 == 1.0 and score.errors == []


def test_optimal_matching_where_bfcl_greedy_fails():
    # Answer 1 accepts Oslo or Rome, answer 2 only Oslo. BFCL's greedy pass rejects [Oslo, Rome];
    # the F1 matching pairs Oslo with answer 2 and Rome with answer 1, so F1 is 1.
    answers = [{"get_weather": {"city": ["Oslo", "Rome"]}}, weather("Oslo")]
    ex = toolcall_example(answers)
    score = score_example(ex, out(("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"})))
    assert not score.correct
    assert score.f1 == 1.0 and score.matched == 2


def _best_total(weights: list[list[int]]) -> int:
    """Brute force: the largest total over every one-to-one pairing (a negative weight counts as unpaired)."""
    rows = [[max(w, 0) for w in row] for row in weights]
    if len(rows) > len(rows[0]):
        rows = [list(col) for col in zip(*rows, strict=True)]
    return max(
        sum(rows[i][j] for i, j in enumerate(cols)) for cols in permutations(range(len(rows[0])), len(rows))
    )


def _is_pairing(pairs: list[tuple[int, int]], weights: list[list[int]]) -> bool:
    rows, cols = [i for i, _ in pairs], [j for _, j in pairs]
    return (
        len(set(rows)) == len(rows)
        and len(set(cols)) == len(cols)
        and all(weights[i][j] >= 0 for i, j in pairs)
    )


weight_tables = st.integers(1, 6).flatmap(
    lambda n: st.integers(1, 6).flatmap(
        lambda m: st.lists(st.lists(st.integers(-1, 20), min_size=m, max_size=m), min_size=n, max_size=n)
    )
)


@given(weight_tables)
def test_the_assignment_is_the_brute_force_optimum(weights):
    pairs = _assign(weights)
    assert _is_pairing(pairs, weights)
    assert sum(weights[i][j] for i, j in pairs) == _best_total(weights)


@settings(deadline=None)  # the first call imports scipy.optimize
@given(weight_tables)
def test_the_large_table_method_is_the_brute_force_optimum_too(weights):
    pairs = _assign_scipy(weights)
    assert _is_pairing(pairs, weights)
    assert sum(weights[i][j] for i, j in pairs) == _best_total(weights)


def _greedy(weights):
    cells = sorted(
        ((w, i, j) for i, row in enumerate(weights) for j, w in enumerate(row) if w >= 0), reverse=True
    )
    rows, cols, pairs = set(), set(), []
    for _w, i, j in cells:
        if i not in rows and j not in cols:
            rows.add(i)
            cols.add(j)
            pairs.append((i, j))
    return pairs


def test_the_brute_force_check_tells_a_greedy_pairing_from_the_optimum():
    # Greedy takes the 3 first and is left with 0; pairing crosswise gives 2 + 2.
    weights = [[3, 2], [2, 0]]
    assert sum(weights[i][j] for i, j in _greedy(weights)) < _best_total(weights) == 4


@pytest.mark.parametrize("blocks", [2, _MAX_DP_ASSIGNMENT // 2 + 1, 8])
def test_tables_of_any_size_are_paired_optimally_where_greedy_is_not(blocks):
    # Copies of the 2x2 trap on the diagonal (forbidden elsewhere): the optimum is 4 a block, greedy gets 3.
    n = 2 * blocks
    weights = [[-1] * n for _ in range(n)]
    for b in range(blocks):
        for (di, dj), w in {(0, 0): 3, (0, 1): 2, (1, 0): 2, (1, 1): 0}.items():
            weights[2 * b + di][2 * b + dj] = w
    pairs = _assign(weights)
    assert _is_pairing(pairs, weights)
    assert (
        sum(weights[i][j] for i, j in pairs) == 4 * blocks > sum(weights[i][j] for i, j in _greedy(weights))
    )


def test_a_wide_table_is_paired_exactly():
    # Two calls against twelve answers: beyond the DP's width, the smaller side keeps it exact.
    weights = [[3, 2] + [-1] * 10, [2, 0] + [-1] * 10]
    assert sum(weights[i][j] for i, j in _assign(weights)) == 4


cities = st.sampled_from(["Oslo", "Rome", "Lima"])


@given(
    st.lists(cities, min_size=1, max_size=5),
    st.lists(st.sets(cities, min_size=1).map(sorted), min_size=1, max_size=5),
)
def test_the_most_full_matches_are_found_whatever_the_order(called, accepted):
    """score.matched is the largest number of calls that can each take a different answer they satisfy."""
    ex = toolcall_example([{"get_weather": {"city": ok}} for ok in accepted])
    score = score_example(ex, out(*[("get_weather", {"city": c}) for c in called]))
    fits = [[int(c in ok) for ok in accepted] for c in called]
    assert score.matched == _best_total(fits)


def test_partial_parallel_answer_precision_recall_f1():
    ex = toolcall_example([weather("Oslo"), weather("Rome"), weather("Lima")])
    score = score_example(ex, out(("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Paris"})))
    assert score.precision == pytest.approx(1 / 2)
    assert score.recall == pytest.approx(1 / 3)
    assert score.f1 == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert {"wrong_call_count", "wrong_value"} <= set(score.errors)


def test_argument_f1_over_paired_calls():
    ex = toolcall_example([weather("Oslo", "celsius")])
    score = score_example(ex, out(("get_weather", {"city": "Oslo", "unit": "kelvin"})))
    assert not score.correct and score.f1 == 0.0
    assert (score.arg_matched, score.arg_predicted, score.arg_expected) == (1, 2, 2)
    assert score.argument_f1 == pytest.approx(0.5)


def test_optional_argument_given_correctly_counts_on_both_sides():
    ex = toolcall_example([{"get_weather": {"city": ["Oslo"], "unit": ["", "celsius"]}}])
    with_unit = score_example(ex, out(("get_weather", {"city": "Oslo", "unit": "celsius"})))
    without = score_example(ex, out(("get_weather", {"city": "Oslo"})))
    assert with_unit.argument_f1 == 1.0 and without.argument_f1 == 1.0
    assert (with_unit.arg_matched, with_unit.arg_expected) == (2, 2)
    assert (without.arg_matched, without.arg_expected) == (1, 1)


def test_no_expected_and_no_predicted_scores_one_and_a_spurious_call_zero():
    ex = toolcall_example([], rule="irrelevance")
    assert score_example(ex, "No tool fits; here is my answer.").f1 == 1.0
    spurious = score_example(ex, out(("get_weather", {"city": "Oslo"})))
    assert spurious.f1 == 0.0 and "spurious_call" in spurious.errors and not spurious.correct


def test_no_call_where_one_was_expected():
    score = score_example(toolcall_example([weather("Oslo")]), "It is probably sunny in Oslo.")
    assert score.f1 == 0.0 and score.errors == ["no_call"]
    assert not score.format_ok, "prose where a call was asked for does not take the format"
    irrelevant = score_example(toolcall_example([], rule="irrelevance"), "It is probably sunny in Oslo.")
    assert irrelevant.format_ok


def test_content_errors_are_named():
    ex = toolcall_example([weather("Oslo")])
    assert "unknown_function" in score_example(ex, out(("get_wether", {"city": "Oslo"}))).errors
    mismatch = score_example(ex, out(("get_weather", {"location": "Oslo"})))
    assert {"param_name_mismatch", "missing_required_param"} <= set(mismatch.errors)
    wrong_type = score_example(
        toolcall_example([{"get_time": {"tz": ["UTC"]}}]), out(("get_time", {"tz": 5}))
    )
    assert "wrong_type" in wrong_type.errors


def test_macro_and_micro_differ_as_defined():
    one = toolcall_example([weather("Oslo")], ex_id="one")
    three = toolcall_example([weather("A"), weather("B"), weather("C")], ex_id="three")
    outputs = {"one": out(("get_weather", {"city": "Oslo"})), "three": out(("get_weather", {"city": "A"}))}
    results, _ = score_all([one, three], outputs, "toolcall")
    assert results["f1"]["macro"] == pytest.approx((1.0 + 0.5) / 2)  # second: P=1, R=1/3 -> F1=0.5
    assert results["f1"]["micro"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)  # matched 2, predicted 2, expected 4


def test_format_compliance_strict_f1_and_missing_predictions():
    ex = [toolcall_example([weather("Oslo")], ex_id=str(i)) for i in range(4)]
    outputs = {
        "0": out(("get_weather", {"city": "Oslo"})),
        "1": "```\n" + out(("get_weather", {"city": "Oslo"})) + "\n```",
        "2": '<tool_call name="get_weather"/>',
    }
    results, scores = score_all(ex, outputs, "toolcall")
    # Only the clean output complies: the missing one gave no call where one was expected.
    assert results["format_compliance"] == pytest.approx(1 / 4)
    assert results["f1"]["macro"] == pytest.approx(2 / 4)
    assert results["strict_f1"] == pytest.approx(1 / 4)
    assert results["missing_predictions"] == 1 and results["missing_ids"] == ["3"]
    assert scores[3].to_dict()["missing_prediction"] is True
    strict, _ = score_all(ex, outputs, "toolcall", strict=True)
    assert strict["f1"]["macro"] == pytest.approx(1 / 4) and strict["strict"] is True


def test_json_leaves_keep_list_indices_and_types():
    leaves = dict(json_leaves({"a": [1, {"b": True}], "c": {}, "d": None, "e": []}))
    assert leaves == {
        ("a", 0): ("number", 1.0),
        ("a", 1, "b"): ("bool", True),
        ("c",): ("object",),
        ("d",): ("null",),
        ("e",): ("array",),
    }


def structured(expected, schema=None, ex_id="s"):
    return EvalExample(ex_id, "structured", "test", [], rule="structured", schema=schema, expected=expected)


def test_structured_f1_on_multisets_of_leaves():
    ex = structured({"name": "Ann", "tags": ["a", "b"], "n": 2})
    exact = score_example(ex, '{"name": "Ann", "tags": ["a", "b"], "n": 2.0}')
    assert exact.correct and exact.f1 == 1.0
    swapped = score_example(ex, '{"name": "Ann", "tags": ["b", "a"], "n": 2}')
    assert swapped.precision == pytest.approx(2 / 4) and swapped.recall == pytest.approx(2 / 4)
    assert not swapped.correct and "wrong_value" in swapped.errors


def test_structured_bool_is_not_a_number_and_unparseable_scores_zero():
    ex = structured({"active": True})
    assert score_example(ex, '{"active": 1}').f1 == 0.0
    broken = score_example(ex, "I could not find it.")
    assert broken.f1 == 0.0 and broken.errors == ["invalid_json"] and not broken.format_ok


def test_structured_fenced_output_keeps_its_content_score_but_fails_format():
    ex = structured({"a": 1})
    score = score_example(ex, '```json\n{"a": 1}\n```')
    assert score.f1 == 1.0 and not score.format_ok and score.errors == ["markdown_wrapper"]
    results, _ = score_all([ex], {"s": '```json\n{"a": 1}\n```'}, "structured")
    assert results["format_compliance"] == 0.0 and results["strict_f1"] == 0.0


def test_structured_schema_errors():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "seats": {"type": "integer"}},
        "required": ["name"],
    }
    ex = structured({"name": "Maria", "seats": 20}, schema)
    score = score_example(ex, '{"full_name": "Maria", "seats": "20"}')
    assert {"param_name_mismatch", "missing_required_param", "wrong_type"} <= set(score.errors)


def test_results_carry_baseline_deltas():
    ex = structured({"a": 1})
    results = aggregate("structured", [score_example(ex, '{"a": 1}')])
    base = results["baseline"]
    assert base["metric"] == "structured_f1" and base["llm"] == 0.60 and base["small_model"] == 0.32
    assert base["delta_llm"] == pytest.approx(0.40) and base["beats_llm"] is True
    toolcall = aggregate("toolcall", [score_example(toolcall_example([weather("Oslo")]), "")])
    assert toolcall["baseline"]["delta_llm"] == pytest.approx(-0.74) and not toolcall["baseline"]["beats_llm"]
