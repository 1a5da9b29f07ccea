"""The typed TOML configs' shared core: build a dataclass from a table (errors name the field), write it back."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.errors import InputError
from cep_core.store.tomlfile import build, dumps, toml_value


@dataclass(slots=True)
class Part:
    source: str
    sample: int = 0


@dataclass(slots=True)
class Inner:
    rate: float = 0.1
    names: list[str] = field(default_factory=list)
    precision: str = "auto"


@dataclass(slots=True)
class Outer:
    name: str = "x"
    on: bool = True
    ids: list[int] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    parts: list[Part] = field(default_factory=list)


def test_a_config_written_is_read_back_equal():
    config = Outer(
        name='quote " and ünïcode',
        on=False,
        ids=[0, 3],
        inner=Inner(rate=2e-4, names=["q_proj", "v_proj"], precision="true"),
        parts=[Part("bfcl:simple_python", 5), Part("hermes:x.jsonl")],
    )
    text = dumps(asdict(config))
    assert build(Outer, tomllib.loads(text), "f.toml", bool_as_string={"precision"}) == config


def test_shorthands_one_string_for_a_list_one_table_for_an_array_and_a_bool_for_a_choice():
    raw = {"inner": {"names": "all-linear", "precision": True}, "parts": {"source": "a"}}
    config = build(Outer, raw, "f.toml", bool_as_string={"precision"})
    assert config.inner.names == ["all-linear"] and config.inner.precision == "true"
    assert config.parts == [Part("a")]


@pytest.mark.parametrize(
    ("raw", "named", "says"),
    [
        ({"nmae": "x"}, "nmae", "unknown setting"),
        ({"inner": {"rate": "fast"}}, "inner.rate", "expected a number"),
        ({"inner": {"rate": float("nan")}}, "inner.rate", "expected a number"),
        ({"on": 1}, "on", "expected true or false"),
        ({"ids": [1, True]}, "ids", "expected an integer"),
        ({"parts": [{"source": "a"}, {"sample": 2}]}, "parts[1].source", "missing setting"),
        ({"parts": [{"source": "a", "sampel": 1}]}, "parts[0].sampel", "unknown setting"),
        ({"inner": 3}, "inner", "expected a table"),
        ({"inner": {"precision": True}}, "inner.precision", "expected a string"),
    ],
)
def test_bad_values_name_the_file_and_field(raw, named, says):
    with pytest.raises(InputError) as info:
        build(Outer, raw, "cfg.toml")
    assert "cfg.toml" in str(info.value) and named in str(info.value) and says in str(info.value)


toml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["source", "rate", "x"]), inner)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "on", "ids", "inner", "parts", "zzz"]), toml_values))
def test_any_table_builds_or_fails_with_an_input_error(raw):
    try:
        build(Outer, raw, "cfg.toml")
    except InputError as exc:
        assert "cfg.toml" in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_any_text_is_written_as_toml_that_reads_back_equal(name, source):
    """Even what hand-made JSON quoting got wrong: DEL, other control characters, characters beyond the BMP."""
    config = Outer(name=name, parts=[Part(source)])
    assert build(Outer, tomllib.loads(dumps(asdict(config))), "f.toml") == config
    assert tomllib.loads(f"# {toml_value(source)}\nv = {toml_value(source)}\n") == {"v": source}
