"""`cep traces import FILE.jsonl`: calls recorded elsewhere into a real trace store, through the real CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.cli import main
from cep_core.tracer import query as q
from cep_core.tracer.importer import BATCH, SHOWN_PROBLEMS, check_line
from cep_core.tracer.store import TraceStore

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CEP_TRACES_DB", raising=False)
    monkeypatch.setenv("COLUMNS", "80")


def cep(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def traces(capsys, db, *args: str) -> tuple[int, str, str]:
    """`cep traces --traces DB ARGS...`"""
    return cep(capsys, "traces", "--traces", str(db), *args)


def write_lines(path, objects) -> None:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects))


def test_a_log_file_imports_with_its_times_its_agents_and_its_other_keys(tmp_path, capsys):
    three_days_ago = time.time() - 3 * 86400
    log = tmp_path / "calls.jsonl"
    write_lines(
        log,
        [
            {
                "agent_type": "travel",
                "agent_name": "planner",
                "model_used": "gpt-4o",
                "messages": [
                    {"role": "user", "content": "Flights to Oslo?"},
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "search_flights", "arguments": '{"to": "OSL"}'},
                            }
                        ],
                    },
                ],
                "captured_at": three_days_ago,
                "request_id": "r-1",
            },
            "",
            {
                "user_query": f"my key is {SECRET}",
                "assistant_response": '<tool_call name="find_hotels">{"city": "Rome"}</tool_call>',
                "captured_at": "2025-11-23T12:13:00",
                "success": False,
                "error": "timeout",
            },
        ],
    )
    db = tmp_path / "traces.db"
    code, out, err = traces(
        capsys, db, "import", str(log), "--agent", "support/search", "--model", "m1", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["imported"] == 2
    assert summary["agents"] == {"travel/planner": 1, "support/search": 1}
    assert summary["kept_in_metadata"] == {"request_id": 1}
    store = TraceStore(db)
    rows = [q.get(store, r.id) for r in q.page(store).rows]
    planner, search = rows  # newest first
    assert planner.agent == "travel/planner" and planner.model == "gpt-4o"
    assert planner.ts == pytest.approx(three_days_ago) and planner.metadata["request_id"] == "r-1"
    assert '<tool_call name="search_flights">{"to": "OSL"}</tool_call>' in planner.response
    assert search.agent == "support/search" and search.model == "m1" and not search.success
    assert search.ts == pytest.approx(dt.datetime(2025, 11, 23, 12, 13).timestamp())
    assert SECRET not in json.dumps(search.to_dict()) and search.redactions == 1
    # The narrow list dates what is not from today, with the year when it is not this year.
    code, out, _ = traces(capsys, db, "list")
    stamp = dt.datetime.fromtimestamp(three_days_ago)
    shown = stamp.strftime("%m-%d %H:%M" if stamp.year == dt.date.today().year else "%Y-%m-%d")
    assert code == 0 and "2025-11-23" in out and re.search(rf"{shown}\s+✓\s+travel/planner", out), out


def test_a_bad_file_stores_nothing_and_names_every_bad_line_without_its_content(tmp_path, capsys):
    log = tmp_path / "bad.jsonl"
    good = {"agent_type": "a", "agent_name": "b", "model_used": "m", "user_query": "q"}
    write_lines(
        log,
        [
            good,
            {**good, "user_query": f"key {SECRET}", "captured_at": "last tuesday"},
            "not json",
            "[1, 2]",
            {k: v for k, v in good.items() if k != "agent_name"},
            {**good, "success": "yes"},
            {**good, "messages": "hello"},
            {"agent_type": "a", "agent_name": "b", "model_used": "m"},
            "[" * 100_000 + "]" * 100_000,
        ],
    )
    db = tmp_path / "traces.db"
    code, out, err = traces(capsys, db, "import", str(log))
    assert code == 2 and out == ""
    assert "8 line(s) cannot be imported; nothing was stored" in err
    for where in (
        "bad.jsonl:2 (field 'captured_at')",
        "bad.jsonl:3: not JSON",
        "bad.jsonl:4: a line must be a JSON object",
        "bad.jsonl:5 (field 'agent_name')",
        "bad.jsonl:6 (field 'success')",
        "bad.jsonl:7 (field 'messages')",
        "bad.jsonl:8 (field 'messages')",
        "bad.jsonl:9: not JSON this reader can take (nested too deeply)",
    ):
        assert where in err, where
    assert "bad.jsonl:1" not in err and SECRET not in err
    assert not db.exists()


def test_many_lines_import_in_batches_and_many_problems_are_summed_up(tmp_path, capsys):
    log = tmp_path / "many.jsonl"
    n = 2 * BATCH + 7
    write_lines(
        log, [{"user_query": f"q{i}", "assistant_response": "a", "captured_at": 1.7e9 + i} for i in range(n)]
    )
    db = tmp_path / "traces.db"
    code, out, err = traces(capsys, db, "import", str(log), "--agent", "x/y", "--model", "m")
    assert code == 0, err
    assert f"imported {n} call(s)" in out and f"x/y: {n}" in out
    store = TraceStore(db)
    assert store.count() == n
    assert [r.ts for r in q.page(store, limit=3).rows] == [1.7e9 + n - 1, 1.7e9 + n - 2, 1.7e9 + n - 3]

    bad = tmp_path / "bad.jsonl"
    write_lines(bad, ["{"] * (SHOWN_PROBLEMS + 5))
    code, _, err = traces(capsys, db, "import", str(bad))
    assert code == 2 and "… and 5 more" in err and f"bad.jsonl:{SHOWN_PROBLEMS + 1}:" not in err
    assert store.count() == n


def test_what_cannot_be_read_is_named(tmp_path, capsys):
    code, _, err = cep(capsys, "traces", "import", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "nope.jsonl: no such file" in err
    binary = tmp_path / "calls.jsonl"
    binary.write_bytes(b'{"a": 1}\n\xff\xfe\n')
    code, _, err = cep(capsys, "traces", "import", str(binary))
    assert code == 2 and "calls.jsonl:2: not UTF-8 text (byte 1 of the line)" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    code, _, err = cep(capsys, "traces", "import", str(empty))
    assert code == 2 and "empty.jsonl: no calls in the file" in err
    code, _, err = cep(capsys, "traces", "import", str(empty), "--agent", "planner")
    assert code == 2 and "--agent: give TYPE/NAME" in err


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | st.text(max_size=200)
    | st.builds(json.dumps, st.dictionaries(st.text(max_size=12), st.none() | st.text()))
)
def test_any_line_is_a_call_or_a_named_problem_never_an_exception(tmp_path_factory, text):
    from cep_core.errors import InputError

    path = tmp_path_factory.getbasetemp() / "fuzz.jsonl"
    result = check_line(path, 3, text, {})
    assert isinstance(result, dict | InputError)
    if isinstance(result, InputError):
        assert str(result).startswith(f"{path}:3")
