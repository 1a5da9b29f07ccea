"""What a run's progress.jsonl adds up to, in one pass: the figures the job table shows, the run's status,
its latest step, the last event of each kind. One fold instead of a full read per question; the old
one-question functions are expressed through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.runs.progress import END_STATUSES, iter_progress

FIGURES = ("step", "total_steps", "loss", "tokens_per_s", "eta_s")


@dataclass(slots=True)
class ProgressFold:
    """`add()` each event in log order. `until` (a time stamp): the first event written after it ends the fold
    (an attempt that has ended shows where it stopped, not where the attempt that resumed it has got to)."""

    until: float | None = None
    step: int | None = None  # steps survive across attempts: checkpoint and end never lower it
    total_steps: int | None = None
    loss: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    latest_step: int | None = None  # the highest step any step/checkpoint/end event reports
    status: str = "pending"  # pending, running, completed, stopped or failed: the latest that says decides
    last: dict[str, Any] | None = None
    last_of: dict[str, dict[str, Any]] = field(default_factory=dict)
    closed: bool = False  # an event past `until` was seen: nothing after it counts

    def add(self, event: dict[str, Any]) -> bool:
        """Fold in one checked event (iter_progress's); False once past `until`."""
        ts = event.get("ts")
        if self.closed or (self.until is not None and isinstance(ts, int | float) and ts > self.until):
            self.closed = True
            return False
        kind = event["event"]
        self.last = self.last_of[kind] = event
        step = event.get("step")
        has_step = isinstance(step, int) and not isinstance(step, bool)
        if kind in ("step", "checkpoint", "end") and has_step:
            self.latest_step = step if self.latest_step is None else max(self.latest_step, step)
        if kind in ("preflight", "data", "start"):
            self.status = "running"
        elif kind == "end":
            self.status = event.get("status") if event.get("status") in END_STATUSES else "completed"
        elif kind == "error":
            self.status = "failed"
        if kind == "start" and isinstance(event.get("total_steps"), int):
            self.total_steps = event["total_steps"]
        elif kind == "step":
            for key in FIGURES:
                if event.get(key) is not None:
                    setattr(self, key, event[key])
        elif kind in ("checkpoint", "end") and isinstance(step, int):
            self.step = max(self.step or 0, step)
            if kind == "end":
                self.eta_s = None
        return True

    def figures(self) -> dict[str, Any]:
        """run_progress's answer: FIGURES and the last event's kind."""
        out: dict[str, Any] = {key: getattr(self, key) for key in FIGURES}
        out["last_event"] = self.last["event"] if self.last is not None else None
        return out


def fold_progress(path_or_run_dir: str | Path, until: float | None = None) -> ProgressFold:
    """One pass over a run's progress.jsonl (or a progress file)."""
    fold = ProgressFold(until=until)
    for event in iter_progress(path_or_run_dir):
        if not fold.add(event):
            break
    return fold


def run_progress(run_dir: str | Path, until: float | None = None) -> dict[str, Any]:
    """step, total_steps, loss, tokens_per_s, eta_s and the last event's kind, as the job table shows them."""
    return fold_progress(run_dir, until).figures()


def last_event(path_or_run_dir: str | Path, event: str | None = None) -> dict[str, Any] | None:
    """The newest event (of one kind, when given)."""
    fold = fold_progress(path_or_run_dir)
    return fold.last if event is None else fold.last_of.get(event)


def latest_step(path_or_run_dir: str | Path) -> int | None:
    """The highest step any step/checkpoint/end event reports."""
    return fold_progress(path_or_run_dir).latest_step


def run_status(path_or_run_dir: str | Path) -> str:
    """What the log says about a run: pending, running, completed, stopped or failed.

    `running` means started and not ended; whether the process still lives is the jobs layer's business.
    A run that ended and was started again (resume) counts from its last `start`.
    """
    return fold_progress(path_or_run_dir).status
