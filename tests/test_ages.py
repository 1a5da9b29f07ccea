"""Ages (`30m`, `2h`, `7d`) as the CLI's --since and the console's filter read and say them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cep_core.ages import UNIT_SECONDS, format_age, parse_age


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("30m", 1800.0),
        ("2h", 7200.0),
        (" 7d ", 604800.0),
        ("1.5h", 5400.0),
        ("2 w", 1209600.0),
        ("45s", 45.0),
    ],
)
def test_ages_are_read_in_their_units(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2y", "-2h", "2h ago", "yesterday", "2026-05-01", "1e3s"])
def test_what_is_not_an_age_is_none(text):
    assert parse_age(text) is None


@pytest.mark.parametrize(
    "seconds, text", [(172800, "2d"), (5400, "90m"), (7.5, "7.5s"), (604800, "1w"), (60, "1m")]
)
def test_an_age_is_said_in_the_largest_unit_that_is_exact(seconds, text):
    assert format_age(seconds) == text


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(sorted(UNIT_SECONDS)))
def test_saying_an_age_reads_back_the_same_seconds(count, unit):
    seconds = parse_age(f"{count}{unit}")
    assert seconds is not None and parse_age(format_age(seconds)) == seconds
