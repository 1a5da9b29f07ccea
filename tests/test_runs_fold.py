"""The one-pass progress fold against the per-question readers it replaced, and the incremental reader that
`cep train` follows progress.jsonl with (each event once, complete lines only)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core import runs
from cep_core.runs.fold import ProgressFold, fold_progress

# --- the readers as they were before the fold (one full read each): the oracle ---------------------------


def _old_last_event(path, event=None):
    found = None
    for obj in runs.iter_progress(path):
        if event is None or obj["event"] == event:
            found = obj
    return found


def _old_latest_step(path):
    best = None
    for obj in runs.iter_progress(path):
        step = obj.get("step")
        if (
            obj["event"] in ("step", "checkpoint", "end")
            and isinstance(step, int)
            and not isinstance(step, bool)
        ):
            best = step if best is None else max(best, step)
    return best


def _old_run_status(path):
    status = "pending"
    for obj in runs.iter_progress(path):
        kind = obj["event"]
        if kind in ("preflight", "data", "start"):
            status = "running"
        elif kind == "end":
            status = obj.get("status") if obj.get("status") in runs.END_STATUSES else "completed"
        elif kind == "error":
            status = "failed"
    return status


def _old_run_progress(run_dir, until=None):
    out: dict[str, Any] = dict.fromkeys(
        ("step", "total_steps", "loss", "tokens_per_s", "eta_s", "last_event")
    )
    for event in runs.iter_progress(run_dir):
        if until is not None and isinstance(event.get("ts"), int | float) and event["ts"] > until:
            break
        kind = event["event"]
        out["last_event"] = kind
        if kind == "start" and isinstance(event.get("total_steps"), int):
            out["total_steps"] = event["total_steps"]
        elif kind == "step":
            for key in ("step", "total_steps", "loss", "tokens_per_s", "eta_s"):
                if event.get(key) is not None:
                    out[key] = event[key]
        elif kind in ("checkpoint", "end") and isinstance(event.get("step"), int):
            out["step"] = max(out["step"] or 0, event["step"])
            if kind == "end":
                out["eta_s"] = None
    return out


_MAYBE_STEP = st.none() | st.integers(0, 50) | st.just("7") | st.booleans()
_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "ts": st.none() | st.integers(0, 40) | st.just("late"),
            "event": st.sampled_from([*sorted(runs.EVENT_FIELDS), "other"]),
        },
        optional={
            "step": _MAYBE_STEP,
            "total_steps": _MAYBE_STEP,
            "loss": st.none() | st.floats(0, 5) | st.just(float("inf")),
            "tokens_per_s": st.none() | st.floats(0, 1e4),
            "eta_s": st.none() | st.floats(0, 1e4),
            "status": st.sampled_from(["completed", "stopped", "crashed", None, 3]),
        },
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_EVENTS, st.none() | st.integers(0, 40))
def test_the_fold_answers_as_the_old_per_question_readers_did(tmp_path_factory, events, until):
    path = tmp_path_factory.mktemp("p") / "progress.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + "not json\n")
    whole = fold_progress(path)
    assert whole.status == runs.run_status(path) == _old_run_status(path)
    assert whole.latest_step == runs.latest_step(path) == _old_latest_step(path)
    assert whole.last == runs.last_event(path) == _old_last_event(path)
    for kind in [*runs.EVENT_FIELDS, "other"]:
        assert whole.last_of.get(kind) == runs.last_event(path, kind) == _old_last_event(path, kind)
    assert whole.figures() == runs.run_progress(path) == _old_run_progress(path)
    assert runs.run_progress(path, until=until) == _old_run_progress(path, until=until)


def test_until_ends_the_fold_at_the_first_later_event():
    fold = ProgressFold(until=10)
    assert fold.add({"ts": 5, "event": "step", "step": 3})
    assert not fold.add({"ts": 11, "event": "step", "step": 9})
    assert not fold.add({"ts": 6, "event": "step", "step": 4})  # after the cut-off, even if stamped earlier
    assert (fold.step, fold.latest_step, fold.closed) == (3, 3, True)


# --- the incremental reader ----------------------------------------------------------------------------


def test_progress_tail_yields_each_event_once_and_waits_for_a_partial_line(tmp_path):
    path = tmp_path / "progress.jsonl"
    path.write_text(json.dumps({"ts": 1, "event": "start", "total_steps": 4}) + "\n")
    fresh = runs.ProgressTail(path, from_end=True)  # `cep train` resuming: the earlier attempt is not news
    tail = runs.ProgressTail(path)
    assert [e["event"] for e in tail.read_new()] == ["start"]
    assert tail.read_new() == []
    step = json.dumps({"ts": 2, "event": "step", "step": 1, "loss": 1.5})
    with path.open("a") as f:
        f.write(step[:20])  # the writer is mid-line
    assert tail.read_new() == [] and fresh.read_new() == []
    with path.open("a") as f:
        f.write(step[20:] + "\nnot json\n" + json.dumps({"ts": 3, "event": "step", "step": "two"}) + "\n")
    got = tail.read_new()
    assert [(e["event"], e.get("step")) for e in got] == [("step", 1), ("step", None)]
    assert got[1]["_invalid"] == ["step"]  # checked as iter_progress checks
    assert [e.get("step") for e in fresh.read_new()] == [1, None]
    assert tail.read_new() == [] and fresh.read_new() == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=12), st.lists(st.integers(1, 200), min_size=1, max_size=30))
def test_progress_tail_over_any_appends_reads_what_a_whole_read_does(tmp_path_factory, steps, cuts):
    """However the writer's bytes arrive, the events read incrementally are the whole file's, once each."""
    path = tmp_path_factory.mktemp("p") / "progress.jsonl"
    data = "".join(json.dumps({"ts": i, "event": "step", "step": s}) + "\n" for i, s in enumerate(steps))
    data = data.encode() + b"garbage\n"
    path.write_bytes(b"")
    tail = runs.ProgressTail(path)
    got: list[dict[str, Any]] = []
    at = 0
    for cut in [*cuts, len(data)]:
        with path.open("ab") as f:
            f.write(data[at : at + cut])
        at = min(len(data), at + cut)
        got += tail.read_new()
    assert got == runs.read_progress(path)
