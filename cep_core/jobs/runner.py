"""`python -m cep_core.jobs.runner RUN_DIR -- CMD...`: run a job command and record how it ended.

The runner is the process a backend starts. It runs CMD as its child in the same process group, waits, and
writes RUN_DIR/exit.json with the return code or the signal. Stops signal the whole group (the local backend's
killpg, Slurm's `scancel --full`), so the child gets SIGTERM directly and the runner ignores it rather than
deliver it twice. If the runner itself is killed, there is no exit.json: the registry reads that as a crash.

It first writes RUN_DIR/runner.json saying which run of the job it is (Slurm's SLURM_RESTART_COUNT: a
requeued job runs again under the same id), so a backend can tell this run's records from an earlier run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cep_core.jobs.backend import EXIT_FILE, RUNNER_FILE
from cep_core.store.private import restrict_umask, write_json


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m cep_core.jobs.runner RUN_DIR -- CMD [ARGS...]", file=sys.stderr)
        return 2
    run_dir, command = Path(argv[0]), argv[2:]
    restrict_umask()  # what the job and the libraries it calls write (checkpoints, adapters) is private
    (run_dir / EXIT_FILE).unlink(missing_ok=True)
    run = _run_number()
    _write_record(run_dir / RUNNER_FILE, {"started": time.time(), "run": run, "pid": os.getpid()})
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The child must not inherit "ignore": restore the default handlers in it before exec.
    child = subprocess.Popen(command, preexec_fn=_default_signals)  # noqa: PLW1509 - no threads here
    returncode = child.wait()
    record = {
        "returncode": returncode,
        "signal": -returncode if returncode < 0 else None,
        "ended": time.time(),
        "pid": child.pid,
        "run": run,
    }
    _write_record(run_dir / EXIT_FILE, record)
    return returncode if returncode >= 0 else 128 - returncode


def _run_number() -> int:
    """0 for a job's first run; Slurm counts the reruns of a requeued job in SLURM_RESTART_COUNT."""
    try:
        return max(0, int(os.environ.get("SLURM_RESTART_COUNT", "0")))
    except ValueError:
        return 0


def _write_record(path: Path, record: dict) -> None:
    write_json(path, record, indent=None)


if __name__ == "__main__":
    sys.exit(main())
