"""What a backend is: start a job command, tell whether it still runs, stop it. The registry does the rest.

A job's command always runs under `cep_core.jobs.runner`, which writes `RUN_DIR/exit.json` when the command
ends, so a backend can tell a clean end from a crash even when nobody was waiting on the process.
"""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

EXIT_FILE = "exit.json"
RUNNER_FILE = "runner.json"  # written when a runner starts: which run of the job it is (Slurm reruns a job)
LOG_FILE = "stdout.log"


@dataclass(slots=True)
class LaunchSpec:
    """Everything needed to start one job; backend-specific fields are ignored where they do not apply."""

    job_id: str
    kind: str  # train | eval
    run_dir: Path
    command: list[str]  # the job itself, e.g. [python, -m, cep_core.training, RUN_DIR]
    env: dict[str, str] = field(default_factory=dict)
    gpus: int = 0
    name: str = ""
    # Slurm
    partition: str | None = None
    cpus: int = 1
    mem: str | None = None  # e.g. "32G"
    time_limit: str | None = None  # e.g. "04:00:00"
    extra_sbatch: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Handle:
    """How to find a started job again: a pid with its start time (local) or a Slurm job id."""

    backend: str
    host: str = field(default_factory=socket.gethostname)
    pid: int | None = None
    start_time: float | None = None
    slurm_id: str | None = None


@dataclass(slots=True)
class Status:
    """What a backend can see: whether the job still runs, and how it ended when it does not."""

    alive: bool
    exit_code: int | None = None  # from exit.json or the scheduler; None when unknown
    signal: int | None = None
    scheduler_state: str | None = None  # e.g. Slurm's PENDING, NODE_FAIL
    state: str | None = None  # a registry state the backend already knows (e.g. queued, crashed)
    reason: str = ""


class Backend(Protocol):
    name: str

    def start(self, spec: LaunchSpec) -> Handle: ...

    def poll(self, handle: Handle, run_dir: Path) -> Status: ...

    def stop(self, handle: Handle, grace_s: float = 30.0) -> None: ...


def runner_command(run_dir: Path, command: list[str]) -> list[str]:
    """The job command wrapped by the runner, which records how it ended."""
    return [sys.executable, "-m", "cep_core.jobs.runner", str(run_dir), "--", *command]


def read_exit(run_dir: Path) -> dict | None:
    """RUN_DIR/exit.json ({returncode, signal, ended, run}) or None when the runner has not written it."""
    return _read_record(Path(run_dir) / EXIT_FILE)


def read_runner_start(run_dir: Path) -> dict | None:
    """RUN_DIR/runner.json ({started, run, pid}) of the runner that started last, or None."""
    return _read_record(Path(run_dir) / RUNNER_FILE)


def _read_record(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
