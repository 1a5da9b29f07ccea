"""Structured-output parsing: realistic outputs, each format error, and fuzzing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.formats.structured import parse_structured
from cep_core.formats.taxonomy import ErrorCategory as E

LEAD = {"name": "Dana Reyes", "email": "dana@northwind.io", "seats": 12}


def test_raw_json_object_is_clean():
    result = parse_structured('{"name": "Dana Reyes", "email": "dana@northwind.io", "seats": 12}')
    assert result.value == LEAD and result.errors == [] and result.format_ok


def test_fenced_json_from_the_project_history():
    result = parse_structured(
        '```json\n{"name": "Dana Reyes", "email": "dana@northwind.io", "seats": 12}\n```'
    )
    assert result.value == LEAD and result.errors == [E.MARKDOWN_WRAPPER] and not result.format_ok


def test_prose_before_and_after():
    result = parse_structured(
        'Here is the extracted data:\n{"name": "Dana Reyes", "email": "dana@northwind.io", '
        '"seats": 12}\nLet me know if you need more.'
    )
    assert result.value == LEAD and result.errors == [E.PROSE_AROUND_OUTPUT]


def test_fence_and_prose_together():
    result = parse_structured('Sure!\n```json\n{"a": 1}\n```')
    assert result.value == {"a": 1}
    assert set(result.errors) == {E.MARKDOWN_WRAPPER, E.PROSE_AROUND_OUTPUT}


def test_python_literal_and_trailing_comma_are_invalid_json_but_recovered():
    literal = parse_structured("{'name': 'Dana', 'active': True, 'tags': ('a', 'b')}")
    assert literal.value == {"name": "Dana", "active": True, "tags": ["a", "b"]}
    assert literal.errors == [E.INVALID_JSON]
    trailing = parse_structured('{"items": [1, 2,],}')
    assert trailing.value == {"items": [1, 2]} and trailing.errors == [E.INVALID_JSON]


def test_prose_around_broken_json():
    result = parse_structured("Result: {'a': 1} hope that helps")
    assert result.value == {"a": 1}
    assert set(result.errors) == {E.INVALID_JSON, E.PROSE_AROUND_OUTPUT}


def test_unrecoverable_output():
    for text in ["I could not find an invoice.", "", "   ", '{"a": [1, 2}']:
        result = parse_structured(text)
        assert not result.recovered and result.value is None
        assert E.INVALID_JSON in result.errors


def test_a_braced_string_inside_a_value_does_not_confuse_the_scan():
    result = parse_structured('Output: {"template": "Hello {name}", "n": 1}')
    assert result.value == {"template": "Hello {name}", "n": 1}


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.lists(
            st.sampled_from(
                ["{", "}", "[", "]", '"', "'", ":", ",", "```", "json\n", "True", "null", "1", "a", " ", "\\"]
            ),
            max_size=40,
        ).map("".join),
    )
)
def test_parser_never_raises(text):
    result = parse_structured(text)
    assert result.recovered or result.value is None


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), st.none() | st.booleans() | st.integers() | st.text(max_size=12), max_size=5
    )
)
def test_json_dumps_round_trips(obj):
    import json

    result = parse_structured(json.dumps(obj))
    assert result.value == obj and result.errors == []
