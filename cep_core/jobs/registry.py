"""The job registry in cep.db: one row per job, and every state transition with its reason."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from cep_core.errors import CepError
from cep_core.jobs.backend import Handle, LaunchSpec
from cep_core.store.state import open_state

STATES = ("queued", "running", "succeeded", "failed", "stopped", "crashed", "waiting")
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("succeeded", "failed", "stopped")


@dataclass(slots=True)
class Job:
    id: str
    kind: str
    name: str
    backend: str
    run_dir: str
    command: list[str]
    spec: dict[str, Any]
    state: str
    attempt: int
    created: float
    host: str | None = None
    pid: int | None = None
    start_time: float | None = None
    slurm_id: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    resumes: str | None = None
    resumed_by: str | None = None
    started: float | None = None
    ended: float | None = None
    next_attempt_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def handle(self) -> Handle:
        return Handle(
            backend=self.backend,
            host=self.host or "",
            pid=self.pid,
            start_time=self.start_time,
            slurm_id=self.slurm_id,
        )

    def launch_spec(self) -> LaunchSpec:
        spec = dict(self.spec)
        return LaunchSpec(
            job_id=self.id,
            kind=self.kind,
            run_dir=Path(self.run_dir),
            command=list(self.command),
            name=self.name,
            **spec,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        out.update(self.extra)
        return out


def new_job_id(now: float | None = None) -> str:
    """Time-ordered and short: `j251125-201503-a1b2`."""
    return "j" + time.strftime("%y%m%d-%H%M%S", time.gmtime(now or time.time())) + "-" + secrets.token_hex(2)


def _spec_fields(spec: LaunchSpec) -> dict[str, Any]:
    return {
        "env": spec.env,
        "gpus": spec.gpus,
        "partition": spec.partition,
        "cpus": spec.cpus,
        "mem": spec.mem,
        "time_limit": spec.time_limit,
        "extra_sbatch": spec.extra_sbatch,
    }


class Registry:
    """Jobs and transitions. Every write is a short transaction; many processes may share the database."""

    def __init__(self, home: str | Path | None = None, db: sqlite_utils.Database | None = None):
        self.db = db if db is not None else open_state(home)

    # ---------------------------------------------------------------- reading

    def get(self, job_id: str) -> Job:
        rows = list(self.db.query("SELECT * FROM jobs WHERE id = ?", [job_id]))
        if not rows:
            matches = list(self.db.query("SELECT * FROM jobs WHERE id LIKE ? ORDER BY id", [f"%{job_id}%"]))
            if len(matches) == 1:
                rows = matches
            elif len(matches) > 1:
                raise CepError(f"job id {job_id!r} is ambiguous: {', '.join(r['id'] for r in matches[:5])}")
            else:
                raise CepError(f"no job {job_id!r} (see `cep jobs list`)")
        return _job(rows[0])

    def list(self, states: tuple[str, ...] | None = None, limit: int | None = None) -> list[Job]:
        sql = "SELECT * FROM jobs"
        params: list[Any] = []
        if states:
            sql += f" WHERE state IN ({', '.join('?' for _ in states)})"
            params.extend(states)
        sql += " ORDER BY created DESC, id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_job(row) for row in self.db.query(sql, params)]

    def latest_for_run(self, run_dir: str | Path) -> Job | None:
        """The newest job of a run directory (every attempt of a run shares it), or None."""
        rows = list(
            self.db.query(
                "SELECT * FROM jobs WHERE run_dir = ? ORDER BY created DESC, id DESC LIMIT 1", [str(run_dir)]
            )
        )
        return _job(rows[0]) if rows else None

    def transitions(self, job_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT ts, from_state, to_state, reason FROM job_transitions WHERE job_id = ? ORDER BY id",
                [job_id],
            )
        )

    # ---------------------------------------------------------------- writing

    def create(self, spec: LaunchSpec, backend: str, attempt: int = 1, resumes: str | None = None) -> Job:
        now = time.time()
        row = {
            "id": spec.job_id,
            "kind": spec.kind,
            "name": spec.name,
            "backend": backend,
            "run_dir": str(spec.run_dir),
            "command": json.dumps(spec.command),
            "spec": json.dumps(_spec_fields(spec)),
            "state": "queued",
            "reason": "created",
            "attempt": attempt,
            "resumes": resumes,
            "created": now,
        }
        with self.db.conn:
            self.db["jobs"].insert(row)
            self._record(spec.job_id, None, "queued", "created" if not resumes else f"resumes {resumes}", now)
        return self.get(spec.job_id)

    def set_handle(self, job_id: str, handle: Handle) -> None:
        with self.db.conn:
            self.db["jobs"].update(
                job_id,
                {
                    "host": handle.host,
                    "pid": handle.pid,
                    "start_time": handle.start_time,
                    "slurm_id": handle.slurm_id,
                    "started": time.time(),
                },
            )

    def transition(self, job_id: str, to_state: str, reason: str, **fields: Any) -> Job:
        """Move a job to `to_state`, recording why. A transition to the same state only updates fields."""
        if to_state not in STATES:
            raise ValueError(f"unknown job state {to_state!r}")
        now = time.time()
        with self.db.conn:
            current = self.db.execute("SELECT state FROM jobs WHERE id = ?", [job_id]).fetchone()
            if current is None:
                raise CepError(f"no job {job_id!r}")
            updates = {"state": to_state, "reason": reason, **fields}
            if to_state in FINAL_STATES + ("crashed",) and "ended" not in fields:
                updates["ended"] = now
            self.db["jobs"].update(job_id, updates)
            if current[0] != to_state:
                self._record(job_id, current[0], to_state, reason, now)
        return self.get(job_id)

    def claim_resume(self, job_id: str, successor: str) -> bool:
        """Mark `job_id` as resumed by `successor`, unless another supervisor got there first."""
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE jobs SET resumed_by = ? WHERE id = ? AND resumed_by IS NULL", [successor, job_id]
            )
            return cur.rowcount == 1

    def _record(self, job_id: str, from_state: str | None, to_state: str, reason: str, ts: float) -> None:
        self.db["job_transitions"].insert(
            {"job_id": job_id, "ts": ts, "from_state": from_state, "to_state": to_state, "reason": reason}
        )


def _job(row: dict[str, Any]) -> Job:
    data = dict(row)
    data["command"] = json.loads(data.get("command") or "[]")
    data["spec"] = json.loads(data.get("spec") or "{}")
    known = set(Job.__dataclass_fields__) - {"extra"}
    return Job(**{k: v for k, v in data.items() if k in known})
