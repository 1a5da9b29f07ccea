"""One trace filter language: the console's filter line and `cep traces list` flags accept and refuse the same
terms, find the same traces, and a bad term is named in the error."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cep_console.traces_feed import TraceQuery, TracesFeed
from cep_core.cli import main
from cep_core.errors import InputError
from cep_core.tracer import WorkflowTracer
from cep_core.tracer.filters import parse_terms

# agent=main names two agents (planner/main, router/main): ambiguous, refused by both.
# success=yes has no CLI flag (the CLI has only --failed), so it is left out of the comparison.
FILTERS = [
    "",
    "agent=planner",
    "agent=planner/main",
    "agent=web",
    "agent=main",
    "agent=nobody",
    "agent=nobody/else",
    "model=gpt-4o",
    "success=no",
    "since=2h",
    "since=2026-05-01",
    "since=2026-05-01T10:30",
    "since=1700000000",
    "since=yesterday",
    "since=nan",
    "colour=red",
    "agent=planner since=2026-05-01 model=gpt-4o",
    "agent=search success=no since=7d",
]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three agents through the real tracer; router/main shares planner/main's name."""
    path = tmp_path_factory.mktemp("filters") / "traces.db"
    tracer = WorkflowTracer(path, strict=True)
    for agent_type, agent_name, model, calls in (
        ("planner", "main", "gpt-4o", 3),
        ("router", "main", "gpt-4o", 2),
        ("search", "web", "gpt-4o-mini", 3),
    ):
        for i in range(calls):
            tracer.capture_call(
                agent_type,
                agent_name,
                model,
                user_query=f"{agent_type} question {i}",
                assistant_response="ok",
                success=i != 0,
                error=None if i else "timeout",
            )
    tracer.close()
    return path


def _flags(text: str) -> list[str]:
    """The CLI spelling of a filter line: key=value -> --key value, success=no -> --failed."""
    argv: list[str] = []
    for word in text.split():
        key, _, value = word.partition("=")
        argv += ["--failed"] if (key, value) == ("success", "no") else [f"--{key}", value]
    return argv


def _console(path: Path, text: str) -> list[str] | str:
    """Row ids the console feed shows for a filter line, or the error it reports."""
    try:
        page = TracesFeed(path).page(TraceQuery(parse_terms(text)), limit=100)
    except InputError as exc:
        return f"refused: {exc}"
    return [row.id for row in page.rows]


def _cli(path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str] | str:
    """Row ids `cep traces list` prints for the same filter as flags, or its error."""
    try:
        code = main(["traces", "--traces", str(path), "list", "--limit", "100", "--json", *_flags(text)])
    except SystemExit as exc:  # argparse refuses an unknown flag
        code = exc.code
    out, err = capsys.readouterr()
    return [row["id"] for row in json.loads(out)["rows"]] if code == 0 else f"refused: {err}"


@pytest.mark.parametrize("text", FILTERS)
def test_console_and_cli_accept_the_same_filters_and_find_the_same_traces(store_path, text, capsys):
    console, cli = _console(store_path, text), _cli(store_path, text, capsys)
    assert isinstance(console, str) == isinstance(cli, str), (console, cli)
    if not isinstance(console, str):
        assert console == cli


def test_a_bare_agent_name_and_an_iso_date_are_filters_in_the_console(store_path):
    planner = _console(store_path, "agent=planner")
    assert isinstance(planner, list) and len(planner) == 3
    assert _console(store_path, "agent=planner/main") == planner
    everything = _console(store_path, "")
    assert _console(store_path, "since=2000-01-01") == everything
    assert _console(store_path, "since=2999-01-01") == []


@pytest.mark.parametrize(
    "text, named",
    [
        ("agent", "'agent'"),
        ("colour=red", "'colour'"),
        ("success=maybe", "success=maybe"),
        ("since=yesterday", "since=yesterday"),
        ("since=inf", "since=inf"),
    ],
)
def test_a_bad_term_is_named_in_the_error(text, named):
    with pytest.raises(InputError, match=named):
        parse_terms(text)


@pytest.mark.parametrize("text, named", [("agent=nobody", "'nobody'"), ("agent=main", "ambiguous")])
def test_an_agent_the_store_cannot_resolve_is_named_when_the_page_is_read(store_path, text, named):
    assert named in _console(store_path, text)


def test_the_terms_are_said_back_as_typed():
    assert parse_terms("since=2d success=no agent=planner").describe() == "agent=planner success=no since=2d"
    assert parse_terms("").describe() == "all traces"
    assert TraceQuery(parse_terms("model=m"), search="zebra").describe() == "model=m search='zebra'"


@given(st.text(max_size=80))
def test_the_filter_parser_never_raises_anything_but_input_error(text):
    with contextlib.suppress(InputError):
        parse_terms(text)
