"""Tool-call parsing: realistic model outputs, every format error, both formats, and fuzzing."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.formats.taxonomy import ErrorCategory as E
from cep_core.formats.toolcalls import CallFormat, ToolCall, parse_tool_calls, render_hermes, render_target

WEATHER = ToolCall("get_weather", {"city": "Paris"})


def parse(text, expected=CallFormat.TARGET):
    return parse_tool_calls(text, expected)


def test_clean_target_call_has_no_errors():
    result = parse('<tool_call name="get_weather">{"city": "Paris"}</tool_call>')
    assert result.calls == [WEATHER]
    assert result.errors == [] and result.source == "target" and result.format_ok


def test_several_calls_in_order():
    text = (
        '<tool_call name="get_weather">{"city": "Oslo"}</tool_call>\n'
        '<tool_call name="get_weather">{"city": "Rome", "unit": "celsius"}</tool_call>'
    )
    assert [c.arguments["city"] for c in parse(text).calls] == ["Oslo", "Rome"]
    assert parse(text).errors == []


def test_fenced_output_is_a_markdown_wrapper():
    text = '```xml\n<tool_call name="get_weather">{"city": "Paris"}</tool_call>\n```'
    result = parse(text)
    assert result.calls == [WEATHER] and result.errors == [E.MARKDOWN_WRAPPER]


def test_fenced_arguments_inside_the_tag():
    text = '<tool_call name="get_weather">\n```json\n{"city": "Paris"}\n```\n</tool_call>'
    result = parse(text)
    assert result.calls == [WEATHER] and E.MARKDOWN_WRAPPER in result.errors


def test_self_closing_tag_from_the_project_history():
    result = parse('<tool_call name="get_weather"/>')
    assert result.calls == [ToolCall("get_weather", {})]
    assert result.errors == [E.SELF_CLOSING_TAG]


def test_arguments_attribute_with_and_without_self_closing():
    attr = parse('<tool_call name="get_weather" arguments=\'{"city": "Paris"}\'></tool_call>')
    assert attr.calls == [WEATHER] and attr.errors == [E.ARGUMENTS_ATTRIBUTE]
    both = parse('<tool_call name="get_weather" arguments=\'{"city": "Paris"}\'/>')
    assert both.calls == [WEATHER]
    assert set(both.errors) == {E.SELF_CLOSING_TAG, E.ARGUMENTS_ATTRIBUTE}


def test_attribute_value_may_hold_a_closing_angle_bracket():
    result = parse('<tool_call name="compare" arguments=\'{"op": ">"}\'></tool_call>')
    assert result.calls == [ToolCall("compare", {"op": ">"})]


def test_missing_close_tag_runs_to_the_next_tag_or_the_end():
    result = parse(
        '<tool_call name="get_weather">{"city": "Paris"}\n<tool_call name="get_time">{}</tool_call>'
    )
    assert result.calls == [WEATHER, ToolCall("get_time", {})]
    assert result.errors == [E.MISSING_CLOSE_TAG]


def test_missing_open_tag_recovers_hermes_json_before_the_close():
    result = parse('{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>')
    assert result.calls == [WEATHER]
    assert E.MISSING_OPEN_TAG in result.errors and E.WRONG_FORMAT in result.errors


def test_prose_around_the_calls():
    result = parse('Sure! Let me check.\n<tool_call name="get_weather">{"city": "Paris"}</tool_call>\nDone.')
    assert result.calls == [WEATHER] and result.errors == [E.PROSE_AROUND_OUTPUT]


def test_invalid_json_is_recovered_and_named():
    trailing = parse('<tool_call name="get_weather">{"city": "Paris",}</tool_call>')
    assert trailing.calls == [WEATHER] and trailing.errors == [E.INVALID_JSON]
    python_literal = parse("<tool_call name=\"set_alarm\">{'time': '07:00', 'repeat': True}</tool_call>")
    assert python_literal.calls == [ToolCall("set_alarm", {"time": "07:00", "repeat": True})]
    assert python_literal.errors == [E.INVALID_JSON]
    garbage = parse('<tool_call name="get_weather">{city: Paris</tool_call>')
    assert garbage.calls == [ToolCall("get_weather", {})] and E.INVALID_JSON in garbage.errors


def test_hermes_row_from_the_dataset_card():
    # Python-literal dict with True, as NousResearch/hermes-function-calling-v1 writes it.
    text = (
        "<tool_call>\n{'arguments': {'departure_city': 'New York', 'flexible_cancellation': True}, "
        "'name': 'search_flights'}\n</tool_call>"
    )
    as_hermes = parse(text, CallFormat.HERMES)
    assert as_hermes.calls == [
        ToolCall("search_flights", {"departure_city": "New York", "flexible_cancellation": True})
    ]
    assert as_hermes.source == "hermes"
    assert E.WRONG_FORMAT not in as_hermes.errors
    assert E.WRONG_FORMAT in parse(text).errors, "Hermes where the target format was asked"


def test_target_tag_where_hermes_was_asked_is_wrong_format():
    assert E.WRONG_FORMAT in parse('<tool_call name="f">{}</tool_call>', CallFormat.HERMES).errors


def test_hermes_json_inside_a_target_tag():
    text = '<tool_call name="get_weather">{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    result = parse(text)
    assert result.calls == [WEATHER] and E.WRONG_FORMAT in result.errors


def test_openai_style_arguments_string_and_function_wrapper():
    text = '<tool_call>{"function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}</tool_call>'
    assert parse(text, CallFormat.HERMES).calls == [WEATHER]


def test_bare_json_call_and_list_without_tags():
    single = parse('{"name": "get_weather", "arguments": {"city": "Paris"}}')
    assert single.calls == [WEATHER] and single.errors == [E.WRONG_FORMAT] and single.source == "json"
    fenced_list = parse('```json\n[{"name": "get_weather", "arguments": {"city": "Paris"}}]\n```')
    assert fenced_list.calls == [WEATHER]
    assert set(fenced_list.errors) == {E.WRONG_FORMAT, E.MARKDOWN_WRAPPER}


def test_python_call_syntax_as_bfcl_prompts_produce():
    result = parse("[math.factorial(number=5), spotify.play(artist='Taylor Swift', duration=20)]")
    assert result.calls == [
        ToolCall("math.factorial", {"number": 5}),
        ToolCall("spotify.play", {"artist": "Taylor Swift", "duration": 20}),
    ]
    assert result.errors == [E.WRONG_FORMAT] and result.source == "python"


def test_plain_answer_has_no_calls_and_no_errors():
    result = parse("I can't check live weather, but Paris is usually mild in May.")
    assert result.calls == [] and result.errors == [] and result.source == "none"


def test_a_json_object_that_is_not_a_call_is_wrong_format():
    result = parse('<tool_call>{"city": "Paris"}</tool_call>', CallFormat.HERMES)
    assert result.calls == [] and E.WRONG_FORMAT in result.errors


def test_unquoted_and_single_quoted_names():
    assert parse('<tool_call name=get_weather>{"city": "Paris"}</tool_call>').calls == [WEATHER]
    assert parse('<tool_call name=\'get_weather\'>{"city": "Paris"}</tool_call>').calls == [WEATHER]


def test_render_both_formats_round_trip():
    calls = [WEATHER, ToolCall("book", {"seats": 2, "names": ["Ann", "Bo"], "vip": False, "note": None})]
    target = render_target(calls)
    assert target.splitlines()[0] == '<tool_call name="get_weather">{"city": "Paris"}</tool_call>'
    assert parse(target).calls == calls and parse(target).errors == []
    hermes = render_hermes(calls)
    assert hermes.startswith(
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )
    assert parse(hermes, CallFormat.HERMES).calls == calls
    assert parse(hermes, CallFormat.HERMES).errors == []


json_scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,20}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(ToolCall, names, st.dictionaries(st.text(max_size=10), json_values, max_size=4)), max_size=4
    )
)
def test_rendered_calls_parse_back_exactly(calls):
    assert parse(render_target(calls)).calls == calls
    assert parse(render_hermes(calls), CallFormat.HERMES).calls == calls


fragments = st.sampled_from(
    [
        "<tool_call",
        '<tool_call name="f">',
        "</tool_call>",
        "/>",
        ">",
        "{",
        "}",
        "[",
        "]",
        '"',
        "'",
        ":",
        ",",
        "arguments=",
        "name=",
        "```",
        "```json\n",
        "True",
        "null",
        '{"name": "f", "arguments": {}}',
        "f(x=1)",
        "\\",
        "\n",
    ]
)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(), st.lists(fragments | st.text(max_size=5), max_size=30).map("".join)))
def test_parser_never_raises(text):
    for expected in CallFormat:
        result = parse_tool_calls(text, expected)
        assert all(isinstance(c.arguments, dict) and isinstance(c.name, str) for c in result.calls)
        json.dumps([c.to_dict() for c in result.calls], default=str)


def test_non_string_input_does_not_raise():
    assert parse_tool_calls(None).calls == []
    assert parse_tool_calls(12345).calls == []


def test_tools_are_read_back_from_rendered_and_hermes_system_prompts():
    from cep_core.prompts.toolprompt import render_tools_prompt, tools_from_system_prompt

    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "d",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    assert tools_from_system_prompt(render_tools_prompt([tool], "Base.")) == [tool]
    hermes = (
        "You are provided with function signatures within <tools> </tools> XML tags.\n<tools>\n"
        "[{'type': 'function', 'function': {'name': 'f', 'parameters': {}}}]\n</tools>"
    )
    assert tools_from_system_prompt(hermes)[0]["function"]["name"] == "f"
    assert tools_from_system_prompt("no tools here") == []
