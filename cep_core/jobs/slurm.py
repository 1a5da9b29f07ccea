"""The Slurm backend: an sbatch script per run, followed with squeue / sacct / scontrol, stopped with scancel.

The job runs the same command as locally, under `cep_core.jobs.runner`, which writes RUN_DIR/exit.json. The
batch script `exec`s the runner, so the batch step *is* the runner: `scancel --signal=TERM --full` reaches the
job's process (which checkpoints and writes `end{stopped}`) while the runner, which ignores SIGTERM, stays to
record the exit. Jobs are submitted with `--requeue`: after a preemption or node failure Slurm runs the same job
id again and the job resumes from its checkpoint.

How a job ended comes from the scheduler (squeue while it is queued or running, then sacct where accounting is
on, else `scontrol show job`, which keeps finished jobs for MinJobAge seconds), refined by the runner's exit
record and the run's last `end` event. TIMEOUT, NODE_FAIL, PREEMPTED, OUT_OF_MEMORY and FAILED are crashes: the
run resumes from its checkpoint (a job that reports a non-retryable error in progress.jsonl is a failure; the
job manager reads that event first). CANCELLED is a stop.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cep_core.errors import CepError
from cep_core.jobs.backend import (
    LOG_FILE,
    Handle,
    LaunchSpec,
    Status,
    read_exit,
    read_runner_start,
    runner_command,
)
from cep_core.runs import iter_progress
from cep_core.store.private import private_dir, write_private

SBATCH_FILE = "job.sbatch"
COMMAND_TIMEOUT_S = 30.0
_CLOCK_SLACK_S = 2.0
_NOT_INSTALLED = (
    "Slurm is not installed here: {tool} not found on PATH; install slurm-wlm or use --backend local"
)

# Slurm job state -> (still alive, registry state). States not listed are treated as unknown.
SLURM_STATES: dict[str, tuple[bool, str]] = {
    "PENDING": (True, "queued"),
    "CONFIGURING": (True, "queued"),
    "REQUEUED": (True, "queued"),
    "REQUEUE_HOLD": (True, "queued"),
    "REQUEUE_FED": (True, "queued"),
    "RESV_DEL_HOLD": (True, "queued"),
    "RUNNING": (True, "running"),
    "COMPLETING": (True, "running"),
    "SUSPENDED": (True, "running"),
    "STOPPED": (True, "running"),
    "SIGNALING": (True, "running"),
    "STAGE_OUT": (True, "running"),
    "RESIZING": (True, "running"),
    "COMPLETED": (False, "succeeded"),
    "FAILED": (False, "crashed"),
    "CANCELLED": (False, "stopped"),
    "REVOKED": (False, "stopped"),
    "TIMEOUT": (False, "crashed"),
    "NODE_FAIL": (False, "crashed"),
    "PREEMPTED": (False, "crashed"),
    "OUT_OF_MEMORY": (False, "crashed"),
    "BOOT_FAIL": (False, "crashed"),
    "SPECIAL_EXIT": (False, "crashed"),
    "DEADLINE": (False, "failed"),
}
# Short explanations for the registry's reason column.
_EXPLAIN = {
    "TIMEOUT": "hit its time limit",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "was preempted",
    "OUT_OF_MEMORY": "ran out of host memory",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "missed its deadline",
}
# Environment variables whose values must not be written into job.sbatch (they travel in sbatch's environment).
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|(^|_)KEY$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STATE_WORD = re.compile(r"[A-Z_]+")
_SCONTROL_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z][A-Za-z0-9_:/.\-]*)=")


class SlurmUnavailable(CepError):
    """A Slurm command could not be run or did not answer (not installed, controller down, timeout)."""


# ------------------------------------------------------------------------------------------------ parsers


def normalize_state(text: object) -> str | None:
    """`CANCELLED by 0` -> CANCELLED, `running` -> RUNNING; None when there is no state word."""
    if not isinstance(text, str):
        return None
    match = _STATE_WORD.match(text.strip().upper())
    return match.group(0) if match else None


def map_state(slurm_state: object) -> tuple[bool, str] | None:
    """(alive, registry state) for a Slurm state, or None when the state is unknown."""
    state = normalize_state(slurm_state)
    return SLURM_STATES.get(state) if state else None


def parse_exit_code(text: object) -> tuple[int | None, int | None]:
    """Slurm's `ExitCode=2:0` / `0:9` -> (exit status, signal); (None, None) when unreadable."""
    if not isinstance(text, str):
        return None, None
    match = re.fullmatch(r"\s*(\d{1,3}):(\d{1,3})\s*", text)
    if not match:
        return None, None
    code, sig = int(match.group(1)), int(match.group(2))
    return code, (sig or None)


def parse_scontrol(text: object) -> dict[str, str]:
    """`scontrol show job` output (one-line `-o` or the multi-line form) as {key: value}.

    Values may contain spaces (paths, names); a value runs until the next `Key=` that follows whitespace.
    """
    if not isinstance(text, str):
        return {}
    out: dict[str, str] = {}
    matches = list(_SCONTROL_KEY.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        key = match.group(1)
        if key not in out:
            out[key] = text[match.end() : end].strip()
    return out


def parse_squeue(text: object) -> tuple[str, str] | None:
    """The first line of `squeue -h -o %T|%r` as (state, reason); None when no job is listed."""
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        state, _, reason = line.strip().partition("|")
        state = normalize_state(state)
        if state:
            return state, reason.strip()
    return None


def parse_sacct(text: object) -> tuple[str, str] | None:
    """The allocation line of `sacct -n -P -X -o State,ExitCode` as (state, exit code text)."""
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        state, _, exit_code = line.strip().partition("|")
        state = normalize_state(state)
        if state:
            return state, exit_code.strip()
    return None


def parse_job_id(text: object) -> str | None:
    """`sbatch --parsable` prints `ID` or `ID;CLUSTER`; anything else is not a job id."""
    if not isinstance(text, str):
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    job_id = first.split(";", 1)[0].strip()
    return job_id if re.fullmatch(r"\d+(_\d+)?", job_id) else None


# ------------------------------------------------------------------------------------------------ sbatch script


def _is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def sbatch_script(spec: LaunchSpec) -> str:
    """The batch script for one run: resources, output and requeue options, exported env, the runner command.

    Secret-looking variables (tokens, passwords, keys) are left out: they reach the job through sbatch's own
    environment (`--export=ALL`), so they never sit in a file in the run directory.
    """
    run_dir = Path(spec.run_dir)
    for what, value in (("run directory", str(run_dir)), ("job name", spec.name or spec.job_id)):
        if "\n" in value or "\r" in value:
            raise CepError(f"the {what} {value!r} contains a line break, which an sbatch script cannot hold")
    if "%" in str(run_dir):
        raise CepError(
            f"the run directory {str(run_dir)!r} contains '%', which Slurm reads as a file-name pattern"
        )
    options: list[str] = [
        f"--job-name={shlex.quote(spec.name or spec.job_id)}",
        f"--output={shlex.quote(str(run_dir / LOG_FILE))}",
        "--open-mode=append",
        "--requeue",
        "--export=ALL",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={max(int(spec.cpus or 1), 1)}",
    ]
    if spec.partition:
        options.append(f"--partition={shlex.quote(spec.partition)}")
    if spec.gpus and spec.gpus > 0:
        options.append(f"--gres=gpu:{int(spec.gpus)}")
    if spec.mem:
        options.append(f"--mem={shlex.quote(str(spec.mem))}")
    if spec.time_limit:
        options.append(f"--time={shlex.quote(str(spec.time_limit))}")
    for extra in spec.extra_sbatch:
        if "\n" in extra or "\r" in extra:
            raise CepError(f"the sbatch option {extra!r} contains a line break")
        options.append(extra)
    lines = ["#!/bin/bash", f"# cep job {spec.job_id} ({spec.kind}); written by cep_core.jobs.slurm"]
    lines += [f"#SBATCH {option}" for option in options]
    lines.append("")
    for name, value in spec.env.items():
        if not _ENV_NAME.match(name):
            raise CepError(f"environment variable name {name!r} is not a valid shell name")
        if _is_secret(name):
            lines.append(f"# {name}: passed through sbatch's environment, not written here")
        else:
            lines.append(f"export {name}={shlex.quote(str(value))}")
    # exec: the runner becomes the batch step, so scancel --signal=TERM --full reaches the job's own process.
    lines.append("exec " + shlex.join(runner_command(run_dir, list(spec.command))))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ the backend


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
        env = {**os.environ, **{k: str(v) for k, v in spec.env.items() if _is_secret(k)}}
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
            if listed is not None and _still_alive(listed[0]):
                return SchedulerView(state=listed[0], reason=_clean_reason(listed[1]), source="squeue")
        elif not _is_unknown_job(result.stderr):
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
            if _is_unknown_job(shown.stderr):
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
            reason=_clean_reason(record.get("Reason", "")),
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
                return _status_from_exit(records, f"Slurm did not answer ({exc}); ")
            return Status(alive=True, state=self._last_state.get(job_id), reason=f"state unknown: {exc}")
        if view is None:
            prefix = f"Slurm no longer lists job {job_id}; "
            records = this_run(run_dir, handle.start_time, restarts=None, only_if_exited=True)
            if records.ended is not None:
                return _status_from_exit(records, prefix)
            return Status(
                alive=False, state="crashed", reason=prefix + "the job left no exit record (killed or lost)"
            )
        mapped = map_state(view.state)
        if mapped is None:  # a state this code does not know: trust the runner, else assume it still runs
            records = this_run(run_dir, handle.start_time, restarts=view.restarts, only_if_exited=True)
            if records.ended is not None:
                return _status_from_exit(records, f"Slurm state {view.state}; ", view.state)
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
        how = _how(code, sig, ended is not None)
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
        if view is None or not _still_alive(view.state):
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
            if view is None or not _still_alive(view.state):
                return
        self._scancel(["scancel", job_id])

    def _scancel(self, args: list[str]) -> None:
        result = self.run(args)
        err = result.stderr.strip()
        if result.returncode != 0 and not _is_unknown_job(err) and "already completing" not in err.lower():
            raise CepError(f"{shlex.join(args)} failed: {err[-300:] or f'exit status {result.returncode}'}")


# ------------------------------------------------------------------------------------------------ helpers


def _still_alive(slurm_state: str) -> bool:
    """Queued or running; a state this code does not know counts as alive (other witnesses decide the end)."""
    mapped = map_state(slurm_state)
    return mapped is None or mapped[0]


def _is_unknown_job(stderr: str) -> bool:
    text = stderr.lower()
    return "invalid job id" in text or "job has already finished" in text or "does not exist" in text


def _clean_reason(reason: str) -> str:
    return "" if reason in ("None", "(null)") else reason


@dataclass(slots=True)
class RunRecords:
    """What the job's latest run left on disk: its exit record and its last `end` event (None: none)."""

    ended: dict | None
    end_event: dict | None
    note: str = ""


def this_run(
    run_dir: Path, since: float | None, restarts: int | None, only_if_exited: bool = False
) -> RunRecords:
    """The records of the job's latest run only.

    A requeued job runs again under the same Slurm id and run directory, so an earlier run's `end{stopped}`
    (what a preempted job writes) must not be read as how the latest run ended. The runner notes which run it
    is in runner.json; records older than its start belong to an earlier run. When Slurm says it ran the job
    more times than any runner started (`restarts`), the latest run died before its runner did anything.
    `only_if_exited`: without this run's exit record, do not read progress.jsonl (it can be long).
    """
    run_dir = Path(run_dir)
    started = read_runner_start(run_dir)
    run = started.get("run") if started else None
    if restarts and (not isinstance(run, int) or run < restarts):
        return RunRecords(None, None, f"run {restarts + 1} of the job ended before its runner started")
    ended = read_exit(run_dir)
    stamp = ended.get("ended") if ended else None
    if since is not None and isinstance(stamp, int | float) and stamp < since - _CLOCK_SLACK_S:
        ended = None  # from a previous attempt's submission
    if ended is not None and isinstance(run, int) and ended.get("run", run) != run:
        ended = None  # from an earlier run of this submission
    if ended is None and only_if_exited:
        return RunRecords(None, None)
    floor = (since or 0) - _CLOCK_SLACK_S
    start = started.get("started") if started else None
    found = None
    for event in iter_progress(run_dir):
        ts = event.get("ts")
        if event["event"] != "end":
            continue
        if not isinstance(ts, int | float) or (
            ts >= floor and not (isinstance(start, int | float) and ts < start)
        ):
            found = event
    return RunRecords(ended, found)


def _how(code: object, sig: object, from_runner: bool) -> str:
    """How the process ended, and who says so (the runner's record, or only the scheduler's exit code)."""
    who = "the command" if from_runner else "the batch step"
    if isinstance(sig, int) and sig > 0:
        text = f"{who} was killed by signal {_signal_name(sig)}"
    elif isinstance(code, int) and (from_runner or code != 0):  # Slurm's 0:0 also means "never ran"
        text = f"{who} exited with status {code}"
    else:
        text = ""
    if not from_runner:
        text = f"{text}; no exit record from the runner" if text else "no exit record from the runner"
    return text


def _status_from_exit(records: RunRecords, prefix: str, scheduler_state: str | None = None) -> Status:
    """How the job ended by the runner's record alone (the scheduler has forgotten it or does not answer)."""
    ended = records.ended or {}
    code, sig = ended.get("returncode"), ended.get("signal")
    code = code if isinstance(code, int) and code >= 0 else None
    sig = sig if isinstance(sig, int) and sig > 0 else None
    state = "succeeded" if code == 0 and sig is None else "crashed"
    end_event = records.end_event
    if end_event is not None and end_event.get("status") == "stopped":
        state = "stopped"
    return Status(
        alive=False,
        exit_code=code,
        signal=sig,
        scheduler_state=scheduler_state,
        state=state,
        reason=prefix + "the runner recorded: " + (_how(code, sig, True) or "an unreadable exit"),
    )


def _signal_name(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
