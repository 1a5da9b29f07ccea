"""Hostile inputs, as a new user or an attacker would give them (issue #14): each case runs the real `cep` in a
subprocess on real files and a real SQLite store, and asserts a clear error (the file, line or field named,
exit 2) or correct output — never a traceback. Parsers are also fuzzed with hypothesis where it fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cep_core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "cep_core" / "samples"


def cep(*args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """The real CLI in a subprocess: (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean_error(rc: int, err: str, *named: str) -> None:
    """Exit 2, one `cep: error:` message naming each of `named`, no traceback."""
    assert "Traceback" not in err, err
    assert rc == 2, (rc, err)
    assert err.startswith("cep: error:"), err
    for text in named:
        assert text in err, (text, err)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> Path:
    """A real trace store with a few captures (through WorkflowTracer)."""
    from cep_core.tracer import WorkflowTracer

    db = home / "traces.db"
    tracer = WorkflowTracer(db, strict=True)
    for i in range(3):
        tracer.capture_call(
            "travel",
            "planner",
            "gpt-4o",
            user_query=f"key value {i}",
            assistant_response="a:b:c done",
            success=i != 1,
            error=None if i != 1 else "timed out",
        )
    tracer.close()
    return db


# ------------------------------------------------------------------------------------------------ item 4
# FTS5 queries a user may type after --raw: quotes, operators alone, column filters, special queries, NUL.
HOSTILE_FTS = [
    '"',
    '""',
    "'",
    "*",
    "**",
    "key*",
    "*key",
    "-key",
    "--",
    "+",
    "^",
    "^key",
    "key^",
    "nosuchcol:key",
    "a:b:c",
    ":",
    "user_query:",
    "{user_query response}:key",
    "{nosuch}:key",
    "-{user_query}:key",
    "(",
    ")",
    "()",
    "(key",
    "key)",
    "AND",
    "OR",
    "NOT",
    "key AND",
    "OR key",
    "key NOT",
    "NEAR(",
    "NEAR(key value, x)",
    "NEAR(key value, -1)",
    "NEAR()",
    "key NEAR value",
    "key + + value",
    '"unterminated phrase',
    "x\x01y",
    "ключ",
    "🔑",
    "key value",
]


def test_every_hostile_raw_query_is_a_clear_error_or_a_result(store, home):
    assert len(HOSTILE_FTS) == 42
    crashed = []
    for query in HOSTILE_FTS:
        rc, out, err = cep("traces", "search", "--raw", "--json", "--", query, home=home)
        if rc == 0:
            json.loads(out)
            continue
        if rc != 2 or "Traceback" in err or "bad full-text query" not in err:
            crashed.append((query, rc, err[-300:]))
    assert not crashed, crashed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=30))
def test_a_raw_query_never_raises_anything_but_an_input_error(store, text):
    from cep_core.tracer import query as q
    from cep_core.tracer.store import TraceStore

    trace_store = TraceStore(store)
    try:
        q.search(trace_store, text, raw=True)
    except InputError as exc:
        assert "bad full-text query" in str(exc)
    finally:
        trace_store.close()
