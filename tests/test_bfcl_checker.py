"""BFCL's AST-checker rules and quirks, each on a small case built from BFCL's own conventions."""

from __future__ import annotations

from cep_core.formats.toolcalls import ToolCall
from cep_core.scoring.bfcl_checker import check_call, check_example, standardize_string

AREA = {
    "name": "calc_area",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "integer"},
            "height": {"type": "float"},
            "unit": {"type": "string"},
            "sides": {"type": "array", "items": {"type": "float"}},
            "options": {"type": "dict"},
            "shapes": {"type": "array", "items": {"type": "dict"}},
            "exact": {"type": "boolean"},
        },
        "required": ["base"],
    },
}


def answer(**params):
    return {"calc_area": params}


def ok(args, ans, desc=AREA):
    return check_call(desc, ToolCall("calc_area", args), ans).valid


def test_exact_function_name():
    assert not check_call(AREA, ToolCall("calc_Area", {"base": 1}), answer(base=[1])).valid


def test_required_parameter_beats_an_optional_marker():
    # The answer says "" (may be omitted), but the schema requires it: BFCL still rejects the omission.
    assert not ok({}, answer(base=[""]))
    assert ok({"base": 3}, answer(base=["", 3]))


def test_parameter_in_schema_but_not_in_answer_is_rejected():
    assert not ok({"base": 3, "unit": "cm"}, answer(base=[3]))
    assert ok({"base": 3, "unit": "cm"}, answer(base=[3], unit=["cm", ""]))


def test_parameter_outside_the_schema_is_rejected():
    assert not ok({"base": 3, "colour": "red"}, answer(base=[3], colour=["red"]))


def test_optional_answer_parameter_may_be_omitted_but_a_non_optional_one_may_not():
    assert ok({"base": 3}, answer(base=[3], unit=["", "cm"]))
    assert not ok({"base": 3}, answer(base=[3], unit=["cm"]))


def test_int_accepted_for_float_only_at_the_top_level():
    assert ok({"base": 3, "height": 5}, answer(base=[3], height=[5.0]))
    assert not ok({"base": 3, "sides": [1, 2]}, answer(base=[3], sides=[[1.0, 2.0]]))
    assert ok({"base": 3, "sides": [1.0, 2.0]}, answer(base=[3], sides=[[1.0, 2.0]]))


def test_float_is_not_accepted_for_int_and_bool_is_not_int():
    assert not ok({"base": 3.0}, answer(base=[3]))
    assert not ok({"base": True}, answer(base=[1]))
    assert not ok({"base": 1, "exact": 1}, answer(base=[1], exact=[True]))


def test_string_normalisation_exactly_as_bfcl():
    assert standardize_string("New York, NY") == "newyorkny"
    assert standardize_string("It's 5/3 - 2*x^2_a.b") == 'it"s532x2ab'
    assert ok({"base": 1, "unit": "Square-Meters"}, answer(base=[1], unit=["square meters"]))
    assert ok({"base": 1, "unit": "O'Brien"}, answer(base=[1], unit=['O"Brien']))
    # Other punctuation is kept: a colon or a parenthesis still differs.
    assert not ok({"base": 1, "unit": "m:2"}, answer(base=[1], unit=["m2"]))


def test_lists_compared_in_order_with_strings_standardised():
    desc = {
        "name": "calc_area",
        "parameters": {
            "properties": {
                "base": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["base"],
        },
    }
    assert ok({"base": 1, "tags": ["New York", "LA"]}, answer(base=[1], tags=[["new york", "la"]]), desc)
    assert not ok({"base": 1, "tags": ["LA", "New York"]}, answer(base=[1], tags=[["new york", "la"]]), desc)


def test_empty_list_is_accepted_where_the_parameter_may_be_omitted():
    # list_checker reads the "" marker as an empty list.
    assert ok({"base": 1, "sides": []}, answer(base=[1], sides=["", [1.0]]))


def test_dicts_are_checked_one_level_deep_with_optional_keys():
    acceptable = [{"mode": ["fast", "quick"], "retries": [3, ""]}]
    assert ok({"base": 1, "options": {"mode": "Quick"}}, answer(base=[1], options=acceptable))
    assert ok({"base": 1, "options": {"mode": "fast", "retries": 3}}, answer(base=[1], options=acceptable))
    assert not ok({"base": 1, "options": {"mode": "slow"}}, answer(base=[1], options=acceptable))
    assert not ok({"base": 1, "options": {"mode": "fast", "extra": 1}}, answer(base=[1], options=acceptable))
    assert not ok({"base": 1, "options": {"retries": 3}}, answer(base=[1], options=acceptable))


def test_lists_of_dicts_in_order():
    acceptable = [[{"kind": ["square"]}, {"kind": ["circle"]}]]
    assert ok(
        {"base": 1, "shapes": [{"kind": "square"}, {"kind": "circle"}]}, answer(base=[1], shapes=acceptable)
    )
    assert not ok(
        {"base": 1, "shapes": [{"kind": "circle"}, {"kind": "square"}]}, answer(base=[1], shapes=acceptable)
    )


def test_variable_quirk_a_string_answer_for_a_number_parameter():
    # When the answer holds a value of another type than the schema (a "variable"), the value is compared as is.
    assert ok({"base": "n"}, answer(base=["n"]))
    assert not ok({"base": "m"}, answer(base=["n"]))


def test_simple_rule_checks_the_first_description_and_exactly_one_call():
    other = {"name": "other", "parameters": {"properties": {}, "required": []}}
    call = ToolCall("calc_area", {"base": 1})
    assert check_example("simple", [AREA, other], [call], [answer(base=[1])]).valid
    assert not check_example("simple", [other, AREA], [call], [answer(base=[1])]).valid
    assert check_example("simple", [AREA], [call, call], [answer(base=[1])]).error_type.endswith(
        "wrong_count"
    )


def test_multiple_rule_checks_the_first_call_against_the_first_answer():
    call = ToolCall("calc_area", {"base": 1})
    assert check_example("multiple", [AREA], [call], [answer(base=[1])]).valid
    assert not check_example("multiple", [AREA], [], [answer(base=[1])]).valid


def test_parallel_matching_is_greedy_in_the_answers_order():
    # Answer 1 accepts base 1 or 2; answer 2 accepts only base 1. Outputs [1, 2]: BFCL's greedy pass gives
    # output 1 to answer 1, then finds nothing for answer 2 — invalid, although a matching exists.
    answers = [answer(base=[1, 2]), answer(base=[1])]
    calls = [ToolCall("calc_area", {"base": 1}), ToolCall("calc_area", {"base": 2})]
    assert not check_example("parallel", [AREA], calls, answers).valid
    assert check_example("parallel", [AREA], list(reversed(calls)), answers).valid


def test_parallel_order_of_outputs_does_not_matter_otherwise():
    answers = [answer(base=[1]), answer(base=[2])]
    calls = [ToolCall("calc_area", {"base": 2}), ToolCall("calc_area", {"base": 1})]
    assert check_example("parallel", [AREA], calls, answers).valid
    assert not check_example("parallel", [AREA], calls[:1], answers).valid


def test_irrelevance_and_relevance_rules():
    call = ToolCall("calc_area", {"base": 1})
    assert check_example("irrelevance", [AREA], [], None).valid
    assert not check_example("irrelevance", [AREA], [call], None).valid
    assert check_example("relevance", [AREA], [call], None).valid
    assert not check_example("relevance", [AREA], [], None).valid


def test_malformed_descriptions_give_an_invalid_verdict_not_a_crash():
    call = ToolCall("calc_area", {"base": 1})
    assert not check_call(None, call, answer(base=[1])).valid
    untyped = {"name": "calc_area", "parameters": {"properties": {"base": {}}}}
    assert ok({"base": 1}, answer(base=[1]), untyped)
    assert not check_example("parallel", [], [call], [answer(base=[1])]).valid
