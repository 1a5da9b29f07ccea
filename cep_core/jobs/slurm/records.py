"""What the job's latest run left in its run directory (the runner's exit record, the last `end` event), and
how the job ended by those records: the witnesses the backend weighs against what Slurm says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cep_core.jobs.backend import Status, read_exit, read_runner_start
from cep_core.runs import iter_progress

_CLOCK_SLACK_S = 2.0


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


def how_ended(code: object, sig: object, from_runner: bool) -> str:
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


def status_from_exit(records: RunRecords, prefix: str, scheduler_state: str | None = None) -> Status:
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
        reason=prefix + "the runner recorded: " + (how_ended(code, sig, True) or "an unreadable exit"),
    )


def _signal_name(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
