"""Job lifecycle: start a run through a backend, refresh what the registry says from what is true, stop, resume.

How a job ended is read from two witnesses, in this order: the run's own progress.jsonl (an `end` or `error`
event written by the job since this attempt started) and the runner's exit record. A clean end is
`end{completed}`; `end{stopped}` is a stop; an `error` the job reported is a failure when retrying cannot help
(bad config, bad data, no model access, out of memory) and a crash otherwise (GPU lost, NVML, unknown); a process
that vanished without either is a crash. Crashes are what the auto-resume policy acts on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from cep_core.errors import CepError, InputError
from cep_core.jobs.backend import Backend, LaunchSpec, Status
from cep_core.jobs.registry import ACTIVE_STATES, Job, Registry, new_job_id
from cep_core.runs import ProgressWriter, create_run_dir, iter_progress
from cep_core.store.private import write_private
from cep_core.store.state import resolve_home

KINDS = {"train": "cep_core.training", "eval": "cep_core.evaluation"}
BACKENDS = ("local", "slurm")
# Errors a relaunch cannot fix: the run fails. Any other error, or none, is a crash worth resuming.
FAILURE_KINDS = ("config", "data", "model_access", "oom")
_CLOCK_SLACK_S = 2.0


def make_backend(name: str) -> Backend:
    if name == "foreground":
        from cep_core.jobs.foreground import ForegroundBackend

        return ForegroundBackend()
    if name == "local":
        from cep_core.jobs.local import LocalBackend

        return LocalBackend()
    if name == "slurm":
        from cep_core.jobs.slurm.backend import SlurmBackend

        return SlurmBackend()
    raise InputError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


def job_module_command(kind: str, run_dir: Path) -> list[str]:
    if kind not in KINDS:
        raise InputError(f"unknown job kind {kind!r}: use one of {', '.join(KINDS)}")
    return [sys.executable, "-m", KINDS[kind], str(run_dir)]


class JobManager:
    """Starts, refreshes, stops and resumes jobs; the registry is the record, the backends do the work."""

    def __init__(self, registry: Registry | None = None, home: str | Path | None = None):
        self.registry = registry or Registry(home)
        self.home = home
        self._backends: dict[str, Backend] = {}

    def backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = make_backend(name)
        return self._backends[name]

    # ---------------------------------------------------------------- start

    def start_config(
        self,
        config: str | Path,
        kind: str = "train",
        backend: str = "local",
        name: str | None = None,
        **spec_fields: Any,
    ) -> Job:
        """Create a run directory for CONFIG.toml and start its job."""
        config = Path(config)
        if not config.is_file():
            raise InputError("no such config file", path=config)
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        job_module_command(kind, Path("."))  # validates the kind before anything is created
        paths = create_run_dir(name or config.stem, self.home)
        write_private(paths.run_toml, config.read_bytes())
        return self.start_run(paths.root, kind=kind, backend=backend, name=name or config.stem, **spec_fields)

    def start_run(
        self,
        run_dir: str | Path,
        kind: str = "train",
        backend: str = "local",
        name: str = "",
        attempt: int = 1,
        resumes: str | None = None,
        command: list[str] | None = None,
        **spec_fields: Any,
    ) -> Job:
        """Start the job of an existing run directory (`command` overrides the kind's job module)."""
        run_dir = Path(run_dir).resolve()
        spec = LaunchSpec(
            job_id=new_job_id(),
            kind=kind,
            run_dir=run_dir,
            command=command or job_module_command(kind, run_dir),
            name=name or run_dir.name,
            **spec_fields,
        )
        return self._launch(spec, backend, attempt, resumes)

    def _launch(self, spec: LaunchSpec, backend: str, attempt: int, resumes: str | None) -> Job:
        impl = self.backend(backend)  # a missing sbatch fails here, before a row exists
        # The job records into the same home as its launcher (evaluations write cep.db rows).
        spec.env = {"CEP_HOME": str(resolve_home(self.home).resolve()), **spec.env}
        job = self.registry.create(spec, backend, attempt=attempt, resumes=resumes)
        try:
            handle = impl.start(spec)
        except CepError as exc:
            self.registry.transition(job.id, "failed", f"could not start: {exc}")
            raise
        self.registry.set_handle(job.id, handle)
        state = "running" if backend == "local" else "queued"
        where = f"pid {handle.pid}" if handle.pid else f"Slurm job {handle.slurm_id}"
        return self.registry.transition(job.id, state, f"started ({where})")

    # ---------------------------------------------------------------- foreground (cep train)

    def foreground_attempt(self, run_dir: str | Path) -> tuple[int, Job | None]:
        """The attempt number a foreground run of RUN_DIR gets, and the job it resumes; a run that is still
        going (in another terminal, detached, or on Slurm) is an error: two trainers on one run directory
        would write over each other's checkpoints."""
        previous = self.registry.latest_for_run(Path(run_dir).resolve())
        if previous is None:
            return 1, None
        previous = self.refresh(previous)
        if previous.state in ACTIVE_STATES:
            raise CepError(
                f"run {Path(run_dir).name} is still {previous.state} as job {previous.id} "
                f"({previous.backend}); stop it first (cep jobs stop {previous.id})"
            )
        return previous.attempt + 1, previous

    def register_foreground(
        self,
        run_dir: str | Path,
        pid: int,
        command: list[str],
        kind: str = "train",
        name: str = "",
        attempt: int = 1,
        resumes: Job | None = None,
    ) -> Job:
        """Record a job whose process `cep train` started and follows (backend foreground), as running."""
        import psutil

        from cep_core.jobs.backend import Handle
        from cep_core.jobs.foreground import NAME

        run_dir = Path(run_dir).resolve()
        spec = LaunchSpec(job_id=new_job_id(), kind=kind, run_dir=run_dir, command=command, name=name)
        spec.env = {"CEP_HOME": str(resolve_home(self.home).resolve())}
        if resumes is not None:
            self.registry.claim_resume(resumes.id, spec.job_id)
        job = self.registry.create(spec, NAME, attempt=attempt, resumes=resumes.id if resumes else None)
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            started = time.time()
        self.registry.set_handle(job.id, Handle(backend=NAME, pid=pid, start_time=started))
        return self.registry.transition(
            job.id, "running", f"started in the foreground by cep train (pid {pid})"
        )

    def finish_foreground(self, job_id: str, returncode: int) -> Job:
        """`cep train` saw its job process end: record how (its exit record, then the run's own events)."""
        from cep_core.jobs.foreground import write_exit_record

        job = self.registry.get(job_id)
        write_exit_record(job.run_dir, returncode, job.pid or 0)
        # Also after a poll that saw the process gone before this exit record existed (read as a crash).
        if job.state in ACTIVE_STATES or (job.state == "crashed" and not job.resumed_by):
            status = self.backend(job.backend).poll(job.handle, Path(job.run_dir))
            state, reason, exit_code = classify_end(job, status)
            job = self.registry.transition(job.id, state, reason, exit_code=exit_code)
        elif job.exit_code is None:  # ended by a stop that saw the process gone before it was reaped
            job = self.registry.transition(
                job.id, job.state, job.reason or job.state, exit_code=returncode, ended=job.ended
            )
        return job

    # ---------------------------------------------------------------- refresh

    def refresh(self, job: Job) -> Job:
        """Bring one job's state up to date with its process and run directory."""
        if job.state not in ACTIVE_STATES:
            return job
        status = self.backend(job.backend).poll(job.handle, Path(job.run_dir))
        if status.alive:
            state = status.state or "running"
            if state != job.state:
                return self.registry.transition(job.id, state, status.reason or f"now {state}")
            return job
        state, reason, exit_code = classify_end(job, status)
        return self.registry.transition(job.id, state, reason, exit_code=exit_code)

    def refresh_all(self) -> list[Job]:
        """Refresh every active job; one whose backend cannot answer here (no Slurm on this host) is left as is."""
        jobs = []
        for job in self.registry.list(states=ACTIVE_STATES):
            try:
                jobs.append(self.refresh(job))
            except CepError:
                jobs.append(job)
        return jobs

    # ---------------------------------------------------------------- stop and resume

    def stop(self, job_id: str, grace_s: float = 30.0) -> Job:
        job = self.refresh(self.registry.get(job_id))
        if job.state == "waiting":
            return self.registry.transition(job.id, "stopped", "stopped by the user while waiting")
        if job.state not in ACTIVE_STATES:
            raise CepError(f"job {job.id} is {job.state}; there is nothing to stop")
        self.backend(job.backend).stop(job.handle, grace_s)
        deadline = time.monotonic() + grace_s + 10
        while True:
            job = self.refresh(self.registry.get(job.id))
            if job.state not in ACTIVE_STATES or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if job.state in ("crashed", "running", "queued"):
            # We asked it to stop: whatever it managed to write, the user's intent decides the state.
            job = self.registry.transition(
                job.id,
                "stopped",
                "stopped by the user"
                + ("" if job.state != "crashed" else " (killed after the grace period)"),
            )
        return job

    def resume(self, job_id: str, reason: str = "resumed by the user") -> Job:
        """Start a new attempt of a run; it continues from the run's newest valid checkpoint."""
        job = self.refresh(self.registry.get(job_id))
        if job.state in ACTIVE_STATES:
            raise CepError(f"job {job.id} is still {job.state}")
        if job.state == "succeeded":
            raise CepError(f"job {job.id} already completed")
        successor = new_job_id()
        if not self.registry.claim_resume(job.id, successor):
            raise CepError(f"job {job.id} was already resumed by {self.registry.get(job.id).resumed_by}")
        spec = job.launch_spec()
        spec.job_id = successor
        record_decision(job, "relaunch", reason, successor)
        # A run trained in someone's terminal resumes detached: no terminal is waiting for the new attempt.
        from cep_core.jobs import foreground

        backend = foreground.RESUME_BACKEND if job.backend == foreground.NAME else job.backend
        new = self._launch(spec, backend, job.attempt + 1, job.id)
        if job.state == "waiting":
            self.registry.transition(job.id, "crashed", f"{reason}: resumed as {successor}")
        return new


def events_since(run_dir: str | Path, since: float | None) -> list[dict[str, Any]]:
    floor = (since or 0) - _CLOCK_SLACK_S
    return [e for e in iter_progress(run_dir) if not isinstance(e.get("ts"), int | float) or e["ts"] >= floor]


def classify_end(job: Job, status: Status) -> tuple[str, str, int | None]:
    """(state, reason, exit code) of a job whose process is gone."""
    events = [e for e in events_since(job.run_dir, job.started) if e["event"] in ("end", "error")]
    last = events[-1] if events else None
    if last and last["event"] == "end":
        if last.get("status") == "stopped":
            return "stopped", f"stopped at step {last.get('step')}", status.exit_code
        return "succeeded", f"completed at step {last.get('step')}", status.exit_code
    if last and last["event"] == "error":
        kind = last.get("kind", "unknown")
        message = str(last.get("message", ""))[:300]
        state = "failed" if kind in FAILURE_KINDS else "crashed"
        return state, f"{kind}: {message}", status.exit_code
    if status.state in ("succeeded", "failed", "stopped", "crashed"):
        return status.state, status.reason or status.state, status.exit_code
    if status.exit_code == 0:
        return "succeeded", "exited with status 0", 0
    return "crashed", status.reason or "the process ended without a clean end", status.exit_code


def record_decision(job: Job, action: str, reason: str, successor: str | None = None) -> None:
    """A supervisor's decision, in the run's own log, so the console and a reader of the run see it."""
    with contextlib.suppress(OSError):
        ProgressWriter(Path(job.run_dir) / "progress.jsonl").emit(
            "job", action=action, reason=reason, job_id=successor or job.id, attempt=job.attempt
        )
