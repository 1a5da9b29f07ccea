"""The Slurm JobBackend: submits RUN_DIR/job.sbatch with sbatch, follows the job with squeue, then sacct or
`scontrol show job`, weighs that against the run's own records, and stops it with scancel."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cep_core.errors import CepError
from cep_core.jobs.backend import Handle, LaunchSpec, Status
from cep_core.jobs.slurm.parsers import (
    clean_reason,
    is_unknown_job,
    map_state,
    normalize_state,
    parse_exit_code,
    parse_job_id,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    still_alive,
)
from cep_core.jobs.slurm.records import RunRecords, how_ended, status_from_exit, this_run
from cep_core.jobs.slurm.script import SBATCH_FILE, is_secret, sbatch_script
from cep_core.store.private import private_dir, write_private

COMMAND_TIMEOUT_S = 30.0
_NOT_INSTALLED = (
    "Slurm is not installed here: {tool} not found on PATH; install slurm-wlm or use --backend local"
)
# Short explanations for the registry's reason column.
_EXPLAIN = {
    "TIMEOUT": "hit its time limit",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "was preempted",
    "OUT_OF_MEMORY": "ran out of host memory",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "missed its deadline",
}


class SlurmUnavailable(CepError):
    """A Slurm command could not be run or did not answer (not installed, controller down, timeout)."""


@dataclass(slots=True)
class SchedulerView:
    """What Slurm says about one job; `source` names the command that said it."""

    state: str
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None
    source: str = "squeue"
    restarts: int | None = None  # how many times Slurm ran the job again (requeue); None: not said


class SlurmBackend:
    name = "slurm"

    def __init__(self, command_timeout: float = COMMAND_TIMEOUT_S):
        self.command_timeout = command_timeout
        self._require("sbatch")  # fail before the registry has a row for a job that cannot start
        self._accounting: bool | None = None
        self._last_state: dict[str, str] = {}
        self._cancelled: set[str] = set()

    # -- commands

    @staticmethod
    def _require(tool: str) -> str:
        path = shutil.which(tool)
        if path is None:
            raise SlurmUnavailable(_NOT_INSTALLED.format(tool=tool))
        return path

    def run(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run one Slurm command with a timeout; never raises on a non-zero exit, only when it cannot run."""
        exe = self._require(args[0])
        try:
            return subprocess.run(
                [exe, *args[1:]],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.command_timeout,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise SlurmUnavailable(
                f"`{shlex.join(args)}` did not answer within {self.command_timeout:g}s: "
                "is slurmctld running? (try `scontrol ping`)"
            ) from exc
        except OSError as exc:
            raise SlurmUnavailable(f"could not run {args[0]}: {exc}") from exc

    # -- start

    def start(self, spec: LaunchSpec) -> Handle:
        run_dir = private_dir(spec.run_dir)
        script = write_private(run_dir / SBATCH_FILE, sbatch_script(spec))
        script.chmod(0o700)
        env = {**os.environ, **{k: str(v) for k, v in spec.env.items() if is_secret(k)}}
        submitted = time.time()
        result = self.run(["sbatch", "--parsable", str(script)], env=env)
        job_id = parse_job_id(result.stdout)
        if result.returncode != 0 or job_id is None:
            detail = (result.stderr or result.stdout).strip()[-800:] or f"exit status {result.returncode}"
            raise CepError(f"sbatch refused {script}: {detail}")
        self._last_state[job_id] = "queued"
        return Handle(backend=self.name, slurm_id=job_id, start_time=submitted)

    # -- what Slurm says

    def scheduler_view(self, job_id: str) -> SchedulerView | None:
        """The job as squeue, then sacct (accounting on) or scontrol see it; None when Slurm no longer knows it.

        Raises SlurmUnavailable when the controller does not answer (that is not evidence the job ended).
        """
        result = self.run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"])
        if result.returncode == 0:
            listed = parse_squeue(result.stdout)
            if listed is not None and still_alive(listed[0]):
                return SchedulerView(state=listed[0], reason=clean_reason(listed[1]), source="squeue")
        elif not is_unknown_job(result.stderr):
            raise SlurmUnavailable(f"squeue failed: {result.stderr.strip()[-300:]}")
        if self._accounting is not False:
            acct = self.run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State,ExitCode"])
            if acct.returncode == 0:
                self._accounting = True
                row = parse_sacct(acct.stdout)
                if row is not None:
                    code, sig = parse_exit_code(row[1])
                    return SchedulerView(state=row[0], exit_code=code, signal=sig, source="sacct")
            elif "disabled" in acct.stderr.lower() or "accounting" in acct.stderr.lower():
                self._accounting = False
        shown = self.run(["scontrol", "show", "job", "-o", job_id])
        if shown.returncode != 0:
            if is_unknown_job(shown.stderr):
                return None
            raise SlurmUnavailable(f"scontrol show job failed: {shown.stderr.strip()[-300:]}")
        record = parse_scontrol(shown.stdout)
        state = normalize_state(record.get("JobState"))
        if state is None:
            return None
        code, sig = parse_exit_code(record.get("ExitCode"))
        restarts = record.get("Restarts", "")
        return SchedulerView(
            state=state,
            reason=clean_reason(record.get("Reason", "")),
            exit_code=code,
            signal=sig,
            source="scontrol",
            restarts=int(restarts) if restarts.isdigit() else None,
        )

    # -- poll

    def poll(self, handle: Handle, run_dir: Path) -> Status:
        job_id = handle.slurm_id
        if not job_id:
            return Status(alive=False, state="failed", reason="no Slurm job id was recorded for this job")
        try:
            view = self.scheduler_view(job_id)
        except SlurmUnavailable as exc:
            records = this_run(run_dir, handle.start_time, restarts=None, only_if_exited=True)
            if records.ended is not None:
                return status_from_exit(records, f"Slurm did not answer ({exc}); ")
            return Status(alive=True, state=self._last_state.get(job_id), reason=f"state unknown: {exc}")
        if view is None:
            prefix = f"Slurm no longer lists job {job_id}; "
            records = this_run(run_dir, handle.start_time, restarts=None, only_if_exited=True)
            if records.ended is not None:
                return status_from_exit(records, prefix)
            return Status(
                alive=False, state="crashed", reason=prefix + "the job left no exit record (killed or lost)"
            )
        mapped = map_state(view.state)
        if mapped is None:  # a state this code does not know: trust the runner, else assume it still runs
            records = this_run(run_dir, handle.start_time, restarts=view.restarts, only_if_exited=True)
            if records.ended is not None:
                return status_from_exit(records, f"Slurm state {view.state}; ", view.state)
            return Status(alive=True, scheduler_state=view.state, reason=f"Slurm state {view.state}")
        alive, state = mapped
        if alive:  # the run's records are read only once it has ended: progress.jsonl can be long
            self._last_state[job_id] = state
            why = f"Slurm {view.state}" + (f" ({view.reason})" if view.reason else "")
            return Status(alive=True, scheduler_state=view.state, state=state, reason=why)
        return self._ended(job_id, view, state, this_run(run_dir, handle.start_time, view.restarts))

    def _ended(self, job_id: str, view: SchedulerView, state: str, records: RunRecords) -> Status:
        code, sig = view.exit_code, view.signal
        ended, end_event = records.ended, records.end_event
        if ended is not None:
            code, sig = ended.get("returncode"), ended.get("signal")
            if isinstance(code, int) and code < 0:
                code = None
        how = how_ended(code, sig, ended is not None)
        if view.state == "CANCELLED":
            who = (
                "by cep"
                if job_id in self._cancelled
                else "outside cep (scancel by a user or an administrator)"
            )
            reason = f"Slurm CANCELLED {who}"
        elif view.state in _EXPLAIN:
            reason = f"Slurm {view.state}: the job {_EXPLAIN[view.state]}; resumable from its checkpoint"
        else:
            reason = f"Slurm {view.state}"
        if end_event is not None and view.state in ("COMPLETED", "FAILED", "CANCELLED"):
            status_word = end_event.get("status")
            if status_word == "stopped":
                state = "stopped"
            elif status_word == "completed" and view.state != "CANCELLED":
                state = "succeeded"
            reason += f"; the job ended {status_word} at step {end_event.get('step')}"
        elif state == "succeeded" and ended is not None and code not in (0, None):
            state = "crashed"  # the scheduler saw 0 but the runner recorded otherwise: believe the runner
        elif state == "crashed" and job_id in self._cancelled and view.state in ("COMPLETED", "FAILED"):
            state, reason = "stopped", reason + "; stopped by cep"
        if how:
            reason += f"; {how}"
        if records.note:
            reason += f"; {records.note}"
        return Status(
            alive=False, exit_code=code, signal=sig, scheduler_state=view.state, state=state, reason=reason
        )

    # -- stop

    def stop(self, handle: Handle, grace_s: float = 30.0) -> None:
        """SIGTERM to every process of the job (it checkpoints), then `scancel` after `grace_s` if it still runs."""
        job_id = handle.slurm_id
        if not job_id:
            return
        view = self.scheduler_view(job_id)
        if view is None or not still_alive(view.state):
            return
        self._cancelled.add(job_id)
        if map_state(view.state) == (True, "queued"):
            self._scancel(["scancel", job_id])
            return
        self._scancel(["scancel", "--signal=TERM", "--full", job_id])
        deadline = time.monotonic() + max(grace_s, 0.0)
        while time.monotonic() < deadline:
            time.sleep(0.25)
            view = self.scheduler_view(job_id)
            if view is None or not still_alive(view.state):
                return
        self._scancel(["scancel", job_id])

    def _scancel(self, args: list[str]) -> None:
        result = self.run(args)
        err = result.stderr.strip()
        if result.returncode != 0 and not is_unknown_job(err) and "already completing" not in err.lower():
            raise CepError(f"{shlex.join(args)} failed: {err[-300:] or f'exit status {result.returncode}'}")
