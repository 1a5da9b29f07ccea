"""Hostile inputs, as a new user or an attacker would give them (issue #14): each case runs the real `cep` in a
subprocess on real files and a real SQLite store, and asserts a clear error (the file, line or field named,
exit 2) or correct output — never a traceback. Parsers are also fuzzed with hypothesis where it fits."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cep_core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "cep_core" / "data" / "samples"


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


# ------------------------------------------------------------------------------------------------ item 5
def _bad_utf8_copy(source: Path, target: Path, line: int) -> Path:
    """`source` with a Latin-1 byte put into line `line` (1-based): what a file saved by another tool holds."""
    lines = source.read_bytes().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(b'"', b'"caf\xe9 ', 1)
    target.write_bytes(b"".join(lines))
    return target


def test_score_names_the_predictions_file_and_line_that_is_not_utf8(tmp_path, home):
    preds = _bad_utf8_copy(SAMPLES / "demo_toolcall_predictions.jsonl", tmp_path / "preds.jsonl", 3)
    rc, _out, err = cep(
        "score", "--dataset", str(SAMPLES / "demo_toolcall.jsonl"), "--predictions", str(preds), home=home
    )
    assert_clean_error(rc, err, f"{preds}:3", "not UTF-8")


def test_score_names_the_dataset_line_that_is_not_utf8(tmp_path, home):
    data = _bad_utf8_copy(SAMPLES / "demo_toolcall.jsonl", tmp_path / "set.jsonl", 2)
    rc, _out, err = cep(
        "score",
        "--dataset",
        str(data),
        "--predictions",
        str(SAMPLES / "demo_toolcall_predictions.jsonl"),
        home=home,
    )
    assert_clean_error(rc, err, f"{data}:2", "not UTF-8")


def test_eval_fails_as_data_naming_the_file_and_line_that_is_not_utf8(tmp_path, home):
    preds = _bad_utf8_copy(SAMPLES / "demo_toolcall_predictions.jsonl", tmp_path / "preds.jsonl", 5)
    config = tmp_path / "eval.toml"
    config.write_text(
        'name = "latin1"\nbackend = "predictions"\nmodel = "m"\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\n[predictions]\npath = "{preds}"\n'
    )
    rc, _out, err = cep("eval", str(config), home=home)
    assert rc == 2 and "Traceback" not in err
    assert f"evaluation failed (data): {preds}:5: not UTF-8" in err
    [run] = (home / "runs").iterdir()
    error = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()][-1]
    assert error["event"] == "error" and error["kind"] == "data" and f"{preds}:5" in error["message"]


def test_a_training_jsonl_line_that_is_not_utf8_is_skipped_and_counted(tmp_path):
    from cep_core.data.prepare import prepare

    sample = ROOT / "cep_core" / "data" / "samples" / "hermes_sample.jsonl"
    data = _bad_utf8_copy(sample, tmp_path / "train.jsonl", 4)
    whole = prepare([str(sample)], cep=None, holdout_fraction=0.0)
    damaged = prepare([str(data)], cep=None, holdout_fraction=0.0)
    assert damaged.rows == whole.rows
    assert damaged.skipped["malformed_json"] == whole.skipped.get("malformed_json", 0) + 1


def test_a_training_json_array_that_is_not_utf8_names_its_line(tmp_path):
    from cep_core.data.sources import iter_rows

    path = tmp_path / "rows.json"
    path.write_bytes(b'[\n{"a": 1},\n{"b": "caf\xe9"}\n]\n')
    with pytest.raises(InputError) as caught:
        list(iter_rows(str(path)))
    assert caught.value.path == str(path) and caught.value.line == 3


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_the_jsonl_reader_raises_only_input_errors_naming_the_file(tmp_path_factory, data):
    from cep_core.data.bfcl import read_jsonl

    path = tmp_path_factory.mktemp("j") / "any.jsonl"
    path.write_bytes(data)
    try:
        read_jsonl(path)
    except InputError as exc:
        assert exc.path == str(path) and exc.line is not None


# ------------------------------------------------------------------------------------------------ item 8
IMPORT_BAD_NUMBERS = [
    ('"cost": "ten"', "cost", "not a string"),
    ('"cost": -3', "cost", "got -3"),
    ('"cost": true', "cost", "not true/false"),
    ('"cost": [1]', "cost", "not a list"),
    ('"execution_time": 1e400', "execution_time", "got inf"),
    ('"execution_time": -1e400', "execution_time", "got -inf"),
    ('"execution_time": NaN', "execution_time", "got nan"),
    ('"execution_time": "2s"', "execution_time", "not a string"),
]


@pytest.mark.parametrize(
    ("value", "field", "said"), IMPORT_BAD_NUMBERS, ids=[c[0] for c in IMPORT_BAD_NUMBERS]
)
def test_import_rejects_a_bad_cost_or_time_with_its_line_and_field(tmp_path, home, value, field, said):
    good = '{"agent_type": "a", "agent_name": "b", "model_used": "m", "user_query": "q", "cost": 0.5}'
    bad = '{"agent_type": "a", "agent_name": "b", "model_used": "m", "user_query": "q", ' + value + "}"
    path = tmp_path / "calls.jsonl"
    path.write_text(good + "\n" + bad + "\n")
    rc, _out, err = cep("traces", "import", str(path), home=home)
    assert_clean_error(rc, err, f"{path}:2 (field {field!r})", said, "nothing was stored")
    assert not (home / "traces.db").exists() or "0 traces" in cep("traces", "stats", home=home)[1]


def test_the_tracer_stores_a_bad_cost_as_null_and_says_so(home):
    from cep_core.tracer import WorkflowTracer

    tracer = WorkflowTracer(home / "traces.db", strict=True)
    for cost, elapsed in (("ten", float("inf")), (-1, float("nan")), (0.25, 2)):
        tracer.capture_call("a", "b", "m", user_query="q", cost=cost, execution_time=elapsed)
    tracer.close()
    rc, out, err = cep("traces", "list", "--json", home=home)
    assert rc == 0, err
    rows = json.loads(out)["rows"]  # strict JSON: no Infinity
    assert [(r["cost"], r["execution_time"]) for r in rows] == [(0.25, 2.0), (None, None), (None, None)]
    rc, out, _ = cep("traces", "show", rows[-1]["id"], "--json", home=home)
    warnings = json.loads(out)["metadata"]["_capture_warnings"]
    assert any(w.startswith("cost 'ten'") for w in warnings)
    assert any(w.startswith("execution_time 'inf'") for w in warnings)


# ------------------------------------------------------------------------------------------------ item 9
@pytest.mark.parametrize("content", ["", "\n\n", "   \n"], ids=["empty", "blank-lines", "spaces"])
def test_score_on_an_empty_dataset_is_an_error(tmp_path, home, content):
    data = tmp_path / "empty.jsonl"
    data.write_text(content)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("")
    rc, out, err = cep("score", "--dataset", str(data), "--predictions", str(preds), "--json", home=home)
    assert_clean_error(rc, err, str(data), "no toolcall examples")
    assert out == ""


# ------------------------------------------------------------------------------------------------ item 2
NEED_CEP_DB = [
    ("jobs", "list"),
    ("jobs", "list", "--json"),
    ("jobs", "show", "j1"),
    ("jobs", "stop", "j1"),
    ("jobs", "resume", "j1"),
    ("eval", "compare"),
    ("eval", "show", "x"),
    ("jobs", "start", str(SAMPLES.parent / "training" / "configs" / "demo.toml")),
]


@pytest.mark.parametrize("args", NEED_CEP_DB, ids=[" ".join(a[:3])[:30] for a in NEED_CEP_DB])
def test_a_cep_db_that_is_not_sqlite_is_named_with_the_fix(home, args):
    home.mkdir()
    db = home / "cep.db"
    db.write_text("not a database\n")
    rc, out, err = cep(*args, home=home)
    assert_clean_error(rc, err, f"{db}: not a usable SQLite database", f"mv {db} {db}.broken")
    assert out == "" and db.read_text() == "not a database\n"  # nothing written over it
    assert not list((home / "runs").glob("*")), "no run directory made for a job that cannot be registered"


# ------------------------------------------------------------------------------------------------ item 12
def test_the_tracer_guide_says_what_retrain_does(home):
    """docs/tracer.md said `traces retrain` only prints the command while the CLI launched a job."""
    guide = (ROOT / "docs" / "tracer.md").read_text()
    section = guide[guide.index("### Retraining") : guide.index("### For the console")]
    assert "does not start the run" not in section
    assert "launches the training run as a job" in section and "--no-launch" in section
    rc, out, _ = cep("traces", "retrain", "--help", home=home)
    assert rc == 0 and "launch the training job" in " ".join(out.split()) and "--no-launch" in out


# ------------------------------------------------------------------------------------------------ item 6
ABSURD_RANK = """name = "absurd"
model = "builtin:tiny"
device = "cpu"
[data]
sources = ["builtin:sample"]
max_rows = 20
[lora]
r = 1000000000
[train]
max_steps = 2
max_seq_length = 2048
"""


def test_an_absurd_lora_rank_fails_in_pre_flight_and_is_never_relaunched(tmp_path, home):
    config = tmp_path / "absurd.toml"
    config.write_text(ABSURD_RANK)
    rc, out, err = cep("train", "--check", "--json", str(config), home=home)
    assert rc == 2 and "Traceback" not in err
    [lora] = [c for c in json.loads(out)["checks"] if c["name"] == "lora"]
    assert lora["status"] == "fail" and "hidden size 64" in lora["detail"]
    rc, out, err = cep("jobs", "start", str(config), "--json", home=home)
    assert rc == 0, err
    job_id = json.loads(out)["id"]
    from cep_core.jobs.manager import JobManager
    from cep_core.jobs.policy import Supervisor

    manager = JobManager(home=home)
    deadline = time.monotonic() + 120
    while (job := manager.refresh(manager.registry.get(job_id))).state in ("queued", "running"):
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.3)
    assert job.state == "failed" and job.reason.startswith("config:") and "lora" in job.reason
    assert Supervisor(manager, health=lambda job: (True, "ok")).tick() == []  # failed: not a crash to resume


# ------------------------------------------------------------------------------------------------ item 10
GPU_DATA = ROOT / "tests" / "data" / "gpu"
# The fatal Xid 79 as the NVIDIA driver prints it (NVIDIA developer forums, "GPU has fallen off the bus").
XID_79 = "[ 5107.644336] NVRM: Xid (PCI:0000:2a:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n"
JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")


@pytest.fixture
def kern_log(tmp_path) -> Path:
    """Real kernel-log lines (the mixed log of tests/data/gpu, then an Xid 79), as kern.log holds them."""
    path = tmp_path / "kern.log"
    path.write_text((GPU_DATA / "mixed-kernel.log").read_text() + XID_79)
    return path


def _xid_events(home: Path, path: str, stdin: bytes | None = None) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), "gpu", "xid", "--file", path, "--json"],
        capture_output=True,
        input=stdin,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("codec", ["gzip", "xz", "bz2"])
def test_a_rotated_compressed_kernel_log_is_read_like_the_plain_one(kern_log, home, codec):
    import bz2
    import gzip
    import lzma

    compress = {"gzip": gzip.compress, "xz": lzma.compress, "bz2": bz2.compress}[codec]
    suffix = {"gzip": "gz", "xz": "xz", "bz2": "bz2"}[codec]
    rotated = kern_log.with_name(f"kern.log.2.{suffix}")
    rotated.write_bytes(compress(kern_log.read_bytes()))
    plain = _xid_events(home, str(kern_log))
    assert any(e["xid"] == 79 and e["severity"] == "fatal" for e in plain)
    assert _xid_events(home, str(rotated)) == plain
    assert (
        _xid_events(home, "-", stdin=rotated.read_bytes()) == plain
    )  # `cat kern.log.2.gz | cep gpu xid --file -`


@pytest.mark.parametrize(
    ("name", "make", "said"),
    [
        ("kern.log.3.zst", lambda data: b"\x28\xb5\x2f\xfd" + data, "zstd -d"),
        ("kern.log.1.gz", lambda data: gzip.compress(data)[:60], "cannot be decompressed"),
    ],
    ids=["zstd", "truncated-gzip"],
)
def test_a_log_that_cannot_be_read_is_refused_not_reported_clean(kern_log, home, name, make, said):
    path = kern_log.with_name(name)
    path.write_bytes(make(kern_log.read_bytes()))
    rc, out, err = cep("gpu", "xid", "--file", str(path), home=home)
    assert_clean_error(rc, err, str(path), said)
    assert out == ""


def test_a_journal_file_needs_journalctl_and_says_so(tmp_path):
    from cep_core.gpu.logfiles import read_log_file

    path = tmp_path / "system@0001.journal~"
    path.write_bytes(b"LPKSHHRH" + b"\0" * 200)
    with pytest.raises(InputError) as caught:
        read_log_file(path, journalctl="no-such-journalctl")
    assert str(path) in str(caught.value) and f"journalctl --file {path} -k" in str(caught.value)


def test_a_rotated_journal_file_is_read_through_journalctl(kern_log, tmp_path, home):
    """A real journal file, written by systemd-journal-remote from the same kernel lines."""
    import shutil

    if not JOURNAL_REMOTE.exists() or shutil.which("journalctl") is None:
        pytest.skip("needs journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)")
    export = []
    for i, line in enumerate(kern_log.read_text().splitlines()):
        message = line.split("] ", 1)[1] if line.startswith("[") else line.strip()
        export.append(
            f"__REALTIME_TIMESTAMP={1725018189000000 + i * 1000000}\n__MONOTONIC_TIMESTAMP={5107000000 + i}\n"
            f"_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=kernel\nPRIORITY=4\nMESSAGE={message}\n\n"
        )
    (tmp_path / "kernel.export").write_text("".join(export))
    journal = tmp_path / "system@0001.journal"
    subprocess.run(
        [str(JOURNAL_REMOTE), "-o", str(journal), str(tmp_path / "kernel.export")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    from_journal = _xid_events(home, str(journal))
    plain = _xid_events(home, str(kern_log))
    assert [(e["xid"], e["pci"], e["severity"]) for e in from_journal] == [
        (e["xid"], e["pci"], e["severity"]) for e in plain
    ]
    assert from_journal[-1]["xid"] == 79 and from_journal[-1]["ts"] == pytest.approx(1725018189 + 10)


# ------------------------------------------------------------------------------------------------ item 11
def test_every_json_command_prints_json_only_on_stdout(tmp_path, home, store):
    """Each --json command, on a home with traces, an evaluation and jobs: stdout parses as strict JSON (one
    document, or one per line for `gpu xid`), and every note or warning is on stderr."""
    replay = str(GPU_DATA / "healthy-8x-h100.json")
    preds = tmp_path / "three-preds.jsonl"  # most examples without a prediction: `score` warns about them
    preds.write_text("".join((SAMPLES / "demo_toolcall_predictions.jsonl").read_text().splitlines(True)[:3]))
    eval_config = tmp_path / "eval.toml"
    eval_config.write_text(
        'name = "json-table"\nbackend = "predictions"\nmodel = "m"\n'
        f'[[sets]]\nsource = "{SAMPLES / "demo_toolcall.jsonl"}"\n[predictions]\npath = "{preds}"\n'
    )
    calls = tmp_path / "calls.jsonl"
    calls.write_text('{"agent_type": "x", "agent_name": "y", "model_used": "m", "user_query": "q"}\n')
    tiny = tmp_path / "tiny.toml"
    tiny.write_text(ABSURD_RANK.replace("1000000000", "4"))
    first_trace = json.loads(cep("traces", "list", "--json", home=home)[1])["rows"][0]["id"]
    import sqlite3

    with sqlite3.connect(store) as conn:  # an infinity, as the tracer stored one before it checked numbers
        conn.execute("UPDATE traces SET execution_time = 9e999, cost = 9e999 WHERE id = ?", [first_trace])
    job_id = json.loads(cep("jobs", "start", str(eval_config), "--kind", "eval", "--json", home=home)[1])[
        "id"
    ]
    commands = [
        ("jobs", "show", job_id, "--json"),
        ("eval", str(eval_config), "--detach", "--json"),
        ("gpu", "status", "--json"),  # this machine's real NVML path: no driver, exit 2, still JSON
        ("score", "--dataset", str(SAMPLES / "demo_toolcall.jsonl"), "--predictions", str(preds), "--json"),
        ("eval", str(eval_config), "--json"),
        ("eval", "compare", "--json"),
        ("eval", "show", "json-table", "--json"),
        ("jobs", "start", str(eval_config), "--kind", "eval", "--json"),
        ("jobs", "list", "--json"),
        ("prefix", "list", "--json"),
        ("gpu", "status", "--replay", replay, "--json"),
        ("gpu", "check", "--replay", replay, "--json"),
        ("gpu", "xid", "--file", str(GPU_DATA / "mixed-kernel.log"), "--json"),
        ("train", "--check", str(tiny), "--json"),
        ("traces", "stats", "--json"),
        ("traces", "list", "--json"),
        ("traces", "search", "key", "--json"),
        ("traces", "show", first_trace, "--json"),
        ("traces", "export", "--out", str(tmp_path / "export"), "--no-watermark", "--json"),
        ("traces", "import", str(calls), "--json"),
        ("traces", "retrain", "travel/planner", "--force", "--no-launch", "--json"),
        ("traces", "triggers", "--json"),
    ]
    wrong = []
    for args in commands:
        rc, out, err = cep(*args, home=home, env={"COLUMNS": "80"})
        try:
            if args[:2] == ("gpu", "xid"):
                docs = [json.loads(line, parse_constant=_no_constant) for line in out.splitlines()]
                assert docs
            else:
                json.loads(out, parse_constant=_no_constant)
        except (ValueError, AssertionError) as exc:
            wrong.append((" ".join(args[:2]), rc, f"{exc}: {out[-200:]!r} / {err[-200:]!r}"))
        if rc not in (0, 1) and args[:2] != ("gpu", "status") or "Traceback" in err:
            wrong.append((" ".join(args[:2]), rc, err[-300:]))
    assert not wrong, wrong
    [score] = [c for c in commands if c[0] == "score"]
    rc, out, err = cep(*score, home=home)
    assert rc == 0 and "had no prediction" in err and "had no prediction" not in out


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")
