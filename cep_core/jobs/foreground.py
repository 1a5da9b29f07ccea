"""The foreground backend: a job that `cep train` runs in the user's terminal, registered so that `cep jobs list`
and the console list every run a user trained.

`cep train` starts the job process itself and follows it; the registry holds that process's pid and start time
(found again like a local job's), and `cep train` writes the run's exit record when the process ends, as the
runner does for detached jobs, so how it ended is read the same way. A stop signals the job process only: it
shares the terminal's process group with `cep train`, which must live to report the end. A resume starts a
detached local attempt (nobody's terminal is waiting for it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from cep_core.errors import CepError
from cep_core.jobs.backend import EXIT_FILE, Handle, LaunchSpec
from cep_core.jobs.local import LocalBackend
from cep_core.store.private import write_json

NAME = "foreground"
RESUME_BACKEND = "local"


class ForegroundBackend(LocalBackend):
    name = NAME

    def start(self, spec: LaunchSpec) -> Handle:
        raise CepError(
            "a foreground job is started by `cep train`; start a detached one with `cep jobs start`"
        )

    def _signaller(self, pid: int) -> Callable[[int], None]:
        """The job process alone: its group is the terminal's, with `cep train` in it, which must live on to
        report how the job ended."""
        return lambda sig: os.kill(pid, sig)


def write_exit_record(run_dir: str | Path, returncode: int, pid: int) -> None:
    """RUN_DIR/exit.json, as the runner writes it for a detached job."""
    record = {
        "returncode": returncode,
        "signal": -returncode if returncode < 0 else None,
        "ended": time.time(),
        "pid": pid,
        "run": 0,
    }
    write_json(Path(run_dir) / EXIT_FILE, record, indent=None)
