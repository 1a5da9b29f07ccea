"""Start-up of `cep-console`: process start to its first frame, against `python -c "import textual.app"`
measured in the same run (goal: under 1.5x).

The console runs on a real pseudo-terminal (80x24) with a hidden `--first-frame-file F`: once its first frame
is painted it writes time.time() to F and exits. Measured: spawn -> that time stamp. The reference is spawn ->
exit of `python -c "import textual.app"` on the same pseudo-terminal. Both run alternately N times; medians
are compared. Also printed: spawn -> exit of the console (its teardown included) and of a minimal Textual app
(Header, DataTable, Footer) with the same first-frame stamp: the floor any Textual app pays here.

Run: .venv/bin/python benchmarks/console_startup.py [--n 9]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

GOAL = 1.5
ROOT = Path(__file__).resolve().parents[1]


MINIMAL_APP = """
import sys, time
from pathlib import Path
from textual.app import App
from textual.widgets import DataTable, Footer, Header, Static
class Minimal(App):
    def compose(self):
        yield Header(); yield Static("hello"); yield DataTable(); yield Footer()
    def on_mount(self):
        self.call_after_refresh(self.stamp)
    def stamp(self):
        Path(sys.argv[1]).write_text(repr(time.time())); self.exit()
Minimal().run()
"""


def run_on_pty(cmd: list[str], env: dict[str, str], stamp: Path | None = None) -> tuple[float, float | None]:
    """(spawn -> exit, spawn -> the time stamp written to `stamp`) in seconds, on an 80x24 pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def drain() -> None:
        while True:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    if stamp is not None:
        stamp.unlink(missing_ok=True)
    wall_start = time.time()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, close_fds=True)
    code = proc.wait(timeout=60)
    elapsed = time.perf_counter() - start
    os.close(slave)
    os.close(master)
    if code != 0:
        raise SystemExit(f"{cmd} exited with {code}")
    first = float(stamp.read_text()) - wall_start if stamp is not None else None
    return elapsed, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=9)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cep-startup-"))
    env = {**os.environ, "TERM": "xterm-256color", "CEP_HOME": str(home)}
    replay = ROOT / "cep_core" / "gpu" / "recordings" / "healthy-8x-h100.json"
    stamp = home / "first-frame"
    console = [
        sys.executable,
        "-m",
        "cep_console.app",
        "--home",
        str(home),
        "--replay",
        str(replay),
        "--first-frame-file",
        str(stamp),
    ]
    reference = [sys.executable, "-c", "import textual.app"]
    minimal = [sys.executable, "-c", MINIMAL_APP, str(stamp)]
    for cmd in (console, minimal):  # warm the page cache and .pyc files
        run_on_pty(cmd, env, stamp)
    run_on_pty(reference, env)
    ref_times, console_times, console_exit, minimal_times = [], [], [], []
    for _ in range(args.n):
        ref_times.append(run_on_pty(reference, env)[0])
        total, first = run_on_pty(console, env, stamp)
        console_times.append(first)
        console_exit.append(total)
        minimal_times.append(run_on_pty(minimal, env, stamp)[1])
    ref, con = statistics.median(ref_times), statistics.median(console_times)
    mini = statistics.median(minimal_times)
    ratio = con / ref
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )
    print(
        f"reference  python -c 'import textual.app' : median {ref * 1000:7.1f} ms "
        f"(min {min(ref_times) * 1000:.1f}, n={args.n})"
    )
    print(
        f"cep-console start -> first frame          : median {con * 1000:7.1f} ms "
        f"(min {min(console_times) * 1000:.1f}, n={args.n})"
    )
    print(
        f"cep-console start -> first frame -> exit  : median {statistics.median(console_exit) * 1000:7.1f} ms"
    )
    print(
        f"minimal Textual app start -> first frame  : median {mini * 1000:7.1f} ms "
        f"({mini / ref:.2f}x the reference: Textual's own floor here)"
    )
    print(
        f"ratio {ratio:.2f}x (goal < {GOAL}x): {'OK' if ratio < GOAL else 'OVER GOAL'}; "
        f"{con / mini:.2f}x the minimal app"
    )


if __name__ == "__main__":
    main()
