"""Run-directory layout, run ids and the progress.jsonl writer/reader."""

from __future__ import annotations

import json
import re
import stat

from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core import runs
from cep_core.runs import progress


def test_run_ids_are_readable_and_sort_by_time():
    early = runs.new_run_id("My Demo!", now=1_700_000_000)
    late = runs.new_run_id("a", now=1_700_000_001)
    assert re.fullmatch(r"\d{8}-\d{6}-my-demo-[0-9a-f]{4}", early)
    assert early.startswith("20231114-221320-")
    assert sorted([late, early]) == [early, late]


def test_create_run_dir_under_home_with_private_mode(tmp_path):
    paths = runs.create_run_dir("demo", home=tmp_path)
    assert paths.root.parent == tmp_path / "runs"
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o700
    assert paths.checkpoint(40) == paths.root / "checkpoints" / "checkpoint-40"
    assert runs.list_runs(tmp_path) == [paths.root]


def test_writer_appends_and_reader_skips_garbage_and_keeps_unknown_fields(tmp_path):
    writer = runs.ProgressWriter(tmp_path / "progress.jsonl")
    writer.emit(
        "start",
        total_steps=10,
        world_size=1,
        model="m",
        cep_variant="compact",
        cep_sha256="x",
        resumed_from=None,
    )
    with (tmp_path / "progress.jsonl").open("a") as f:
        f.write('not json\n{"event": 3}\n[1,2]\n{"truncated": \n')
        f.write(json.dumps({"ts": 1, "event": "step", "step": 3, "future_field": {"a": 1}}) + "\n")
    writer.emit("step", step=4, total_steps=10, loss=float("nan"), grad_norm=float("inf"))
    events = runs.read_progress(tmp_path)
    assert [e["event"] for e in events] == ["start", "step", "step"]
    assert events[1]["future_field"] == {"a": 1}
    assert events[2]["loss"] is None and events[2]["grad_norm"] is None  # strict JSON, no NaN
    assert runs.latest_step(tmp_path) == 4
    assert runs.last_event(tmp_path, "start")["total_steps"] == 10
    assert runs.run_status(tmp_path) == "running"


def test_unknown_error_kind_becomes_unknown_and_status_follows_events(tmp_path):
    writer = runs.ProgressWriter(tmp_path / "progress.jsonl")
    writer.emit("error", kind="cosmic_ray", message="boom")
    assert runs.last_event(tmp_path)["kind"] == "unknown"
    assert runs.run_status(tmp_path) == "failed"
    writer.emit("start", total_steps=1)
    assert runs.run_status(tmp_path) == "running"
    writer.emit("end", status="stopped", step=1)
    assert runs.run_status(tmp_path) == "stopped"


def test_missing_progress_file_reads_as_pending(tmp_path):
    assert runs.read_progress(tmp_path / "nope") == []
    assert runs.run_status(tmp_path) == "pending"
    assert runs.latest_step(tmp_path) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_reader_never_raises_on_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "progress.jsonl"
    path.write_bytes(data)
    for event in runs.read_progress(path):
        assert isinstance(event, dict) and isinstance(event["event"], str)
    runs.run_status(path)
    runs.latest_step(path)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(runs.EVENT_FIELDS)),
    st.dictionaries(st.sampled_from(sorted(runs.FIELD_TYPES)), _JSON_VALUES, max_size=8),
)
def test_every_known_field_read_back_has_its_type_or_is_dropped_and_named(tmp_path_factory, event, fields):
    """A hand-edited or corrupt line (a string count, an infinite loss) never reaches a reader as written."""
    from cep_core.runs.fold import run_progress

    path = tmp_path_factory.mktemp("p") / "progress.jsonl"
    path.write_text(json.dumps({"event": event, **fields}, allow_nan=True) + "\n")
    [read] = runs.read_progress(path)
    for key, kind in runs.FIELD_TYPES.items():
        if read.get(key) is None:
            continue
        assert progress._holds(kind, read[key]), (key, read[key])
    assert set(read.get("_invalid", [])) <= set(fields)
    assert json.loads(json.dumps(read, allow_nan=False)) == read  # strict JSON all through (nested too)
    prog = run_progress(path.parent)
    assert prog["step"] is None or isinstance(prog["step"], int)
    assert prog["total_steps"] is None or (isinstance(prog["total_steps"], int) and prog["total_steps"] > 0)


def test_a_bad_value_is_dropped_and_named_and_the_good_ones_kept(tmp_path):
    path = tmp_path / "progress.jsonl"
    path.write_text('{"ts": 5, "event": "step", "step": 7, "loss": 1e400, "total_steps": "80", "x": NaN}\n')
    [event] = runs.read_progress(path)
    assert event == {"ts": 5, "event": "step", "step": 7, "x": None, "_invalid": ["loss", "total_steps"]}
