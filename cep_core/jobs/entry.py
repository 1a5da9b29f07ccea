"""What every job process (`python -m cep_core.training RUN_DIR`, `python -m cep_core.evaluation RUN_DIR`) does
around its work: the command line, private files, stdout.log, the stop signal, the exit codes and the `error`
event it ends with when anything goes wrong. One place, so the two jobs cannot drift apart.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cep_core.runs import RunPaths, log_output_to
from cep_core.store.private import restrict_umask

# The job's exit status, read by the runner and the job manager.
EXIT_COMPLETED = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2  # a bad run.toml or a failed pre-flight: resuming would fail the same way
EXIT_STOPPED = 3


class StopFlag:
    """Set by a stop signal; the job checks it between steps (training) or batches (evaluation) and stops
    cleanly, so a SIGTERM from the console, the runner or Slurm leaves a checkpoint and an `end{stopped}`."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._announce = ""

    def install(self, *signals: signal.Signals, announce: str = "") -> None:
        """Handle `signals`; `announce` is printed (`SIGTERM: <announce>`) when one arrives."""
        self._announce = announce
        for sig in signals:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        if self._announce:
            print(f"{self.signal_name}: {self._announce}", flush=True)


def job_main(argv: list[str] | None, *, prog: str, description: str, run: Callable[[RunPaths], int]) -> int:
    """Parse `RUN_DIR [--no-log-file]`, then `run` the job on RUN_DIR with its output in RUN_DIR/stdout.log.

    The umask comes first: checkpoints, adapters and results are written by libraries that do not ask. A
    directory without run.toml is refused before anything is written into it (exit EXIT_CONFIG)."""
    restrict_umask()
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("run_dir")
    parser.add_argument(
        "--no-log-file",
        action="store_true",
        help="print to the terminal instead of appending to RUN_DIR/stdout.log",
    )
    ns = parser.parse_args(argv)
    paths = RunPaths(Path(ns.run_dir).resolve())
    if not paths.run_toml.is_file():
        print(f"{paths.run_toml}: no such file (a run directory holds run.toml)", file=sys.stderr)
        return EXIT_CONFIG
    if not ns.no_log_file:
        log_output_to(paths.stdout_log)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run(paths)


def report_error(emit: Callable[..., Any], exc: BaseException, *, traceback: bool = True) -> tuple[str, str]:
    """The `error` event a failed job ends with: the failure's kind (what the console and the auto-resume
    policy act on) and its message, scrubbed of tokens; the traceback goes to stdout.log. Returns both."""
    from cep_core.training.failures import classify, describe

    kind, message = classify(exc), describe(exc)
    emit("error", kind=kind, message=message)
    if traceback:
        import traceback as tb

        tb.print_exc()
    return kind, message
