"""The runs side of the console: the job table's rows, a run's loss curve, and state changes worth a notice.

Plain Python over cep_core.jobs (registry, manager, supervisor) and the run directories' progress.jsonl. It only
reads (and supervises); launching, stopping and resuming go through cep_console.job_control.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cep_core.runs.fold import run_progress

NOTIFY_STATES = {"crashed": "error", "failed": "error", "succeeded": "information", "waiting": "warning"}


@dataclass(slots=True)
class RunRow:
    job_id: str
    name: str
    kind: str
    backend: str
    state: str
    step: int | None
    total_steps: int | None
    loss: float | None
    tokens_per_s: float | None
    eta_s: float | None
    attempt: int
    run_dir: str
    reason: str
    gpus: int = 0

    @property
    def fraction(self) -> float | None:
        if self.step is None or not self.total_steps:
            return None
        return min(self.step / self.total_steps, 1.0)


class ProgressCache:
    """run_progress per run directory, re-read only when progress.jsonl changed (size or mtime): the job
    table is refreshed every second and a long run's log holds thousands of events."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, float | None], tuple[tuple[int, int], dict[str, Any]]] = {}

    def get(self, run_dir: str, until: float | None = None) -> dict[str, Any]:
        """`until` set (an attempt that has ended): its figures are final, read once however the file grows."""
        hit = self._cache.get((run_dir, until))
        if hit is not None and until is not None:
            return hit[1]
        try:
            st = (Path(run_dir) / "progress.jsonl").stat()
            key = (st.st_size, st.st_mtime_ns)
        except OSError:
            key = (-1, -1)
        if hit is not None and hit[0] == key:
            return hit[1]
        prog = run_progress(run_dir, until=until)
        self._cache[(run_dir, until)] = (key, prog)
        return prog


def row_of(job: Any, cache: ProgressCache | None = None) -> RunRow:
    until = job.ended  # an attempt that has ended shows where it stopped
    prog = cache.get(job.run_dir, until) if cache is not None else run_progress(job.run_dir, until=until)
    return RunRow(
        job_id=job.id,
        name=job.name,
        kind=job.kind,
        backend=job.backend,
        state=job.state,
        step=prog["step"],
        total_steps=prog["total_steps"],
        loss=prog["loss"],
        tokens_per_s=prog["tokens_per_s"],
        eta_s=prog["eta_s"],
        attempt=job.attempt,
        run_dir=job.run_dir,
        reason=job.reason or "",
        gpus=int(job.spec.get("gpus") or 0),
    )


@dataclass(slots=True)
class RunsState:
    rows: list[RunRow]
    changes: list[tuple[RunRow, str]]  # (row, previous state) for jobs that moved to a state worth a notice
    decisions: list[Any]  # the supervisor's decisions of this tick
    error: str = ""  # why the jobs cannot be read (cep.db is not a database …); rows are then empty
    evals_signature: tuple[
        Any, ...
    ] = ()  # changes when an evaluation starts or ends (the Evals screen reloads)


class RunsFeed:
    """Refreshes jobs (and runs the auto-resume supervisor) for the console; remembers states between polls."""

    def __init__(self, home: Path, replay: Path | None = None):
        self.home = home
        self.replay = replay
        self._manager: Any = None
        self._states: dict[str, str] | None = None
        self._supervisor: Any = None
        self._progress = ProgressCache()

    @property
    def manager(self) -> Any:
        """Opened on first use, and again after a failure: a cep.db fixed (moved aside) while the console runs
        is picked up on the next poll."""
        if self._manager is None:
            from cep_console.job_control import open_manager

            self._manager = open_manager(self.home)
        return self._manager

    def supervisor(self) -> Any:
        if self._supervisor is None:
            from cep_core.jobs.policy import Supervisor, gpu_health_check

            self._supervisor = Supervisor(
                self.manager, health=gpu_health_check(str(self.replay) if self.replay else None)
            )
        return self._supervisor

    def poll(self, supervise: bool = False) -> RunsState:
        """Refresh active jobs (or run one supervisor tick), then read every job's progress. A cep.db that
        cannot be opened is a state with its error (the message names the file and the fix), not a raise."""
        from cep_core.store.state import StateDbError

        try:
            return self._poll(supervise)
        except StateDbError as exc:
            self._manager = self._supervisor = None
            return RunsState(rows=[], changes=[], decisions=[], error=str(exc))

    def _poll(self, supervise: bool) -> RunsState:
        decisions = self.supervisor().tick() if supervise else []
        if not supervise:
            self.manager.refresh_all()
        rows = [row_of(job, self._progress) for job in self.manager.registry.list(limit=500)]
        changes: list[tuple[RunRow, str]] = []
        if self._states is not None:
            for row in rows:
                before = self._states.get(row.job_id)
                if before is not None and before != row.state and row.state in NOTIFY_STATES:
                    changes.append((row, before))
        self._states = {r.job_id: r.state for r in rows}
        return RunsState(
            rows=rows, changes=changes, decisions=decisions, evals_signature=self.evals_signature()
        )

    def evals_signature(self) -> tuple[Any, ...]:
        """How many evaluations cep.db has and when the last one started and ended: one cheap query a poll, so
        the Evals screen reloads when an evaluation finishes instead of staying stale until it is left."""
        try:
            row = self.manager.registry.db.execute(
                "SELECT count(*), max(created), max(finished), sum(state = 'running') FROM evaluations"
            ).fetchone()
        except Exception:  # noqa: BLE001 — no table yet (an old home), or a locked database: no signal
            return ()
        return tuple(row)
