"""`python -m cep_core.jobs.runner RUN_DIR -- CMD...`: run a job command and record how it ended.

The runner is the process a backend starts. It runs CMD as its child in the same process group, waits, and
writes RUN_DIR/exit.json with the return code or the signal. Stops signal the whole group (the local backend's
killpg, Slurm's `scancel --full`), so the child gets SIGTERM directly and the runner ignores it rather than
deliver it twice. If the runner itself is killed, there is no exit.json: the registry reads that as a crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cep_core.jobs.backend import EXIT_FILE


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m cep_core.jobs.runner RUN_DIR -- CMD [ARGS...]", file=sys.stderr)
        return 2
    run_dir, command = Path(argv[0]), argv[2:]
    (run_dir / EXIT_FILE).unlink(missing_ok=True)
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
    }
    tmp = run_dir / (EXIT_FILE + ".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, run_dir / EXIT_FILE)
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main())
