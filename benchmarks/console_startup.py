"""Start-up of `cep-console`: process start to its first frame, against `python -c "import textual.app"`
measured in the same run (goal: under 1.5x).

Both run on a real pseudo-terminal (80x24) and the benchmark reads what reaches the terminal, as a user
would see it: the console's first frame is the moment the GPU screen's text ("Sampling the GPUs") arrives.
The console checks its command line with the standard library and loads cep_core only after that frame,
so also timed is the first host verdict ("HOST OK": cep_core loaded, the replayed host sampled and judged,
the banner drawn). Then ctrl+q quits it. The reference is spawn -> exit of `python -c "import textual.app"`.
All run alternately N times; medians are compared. Also printed: a minimal Textual app (Header, Static,
DataTable, Footer) timed the same way: the floor any Textual app pays here.

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
QUIT = b"\x11"  # ctrl+q

MINIMAL_APP = """
from textual.app import App
from textual.widgets import DataTable, Footer, Header, Static
class Minimal(App):
    def compose(self):
        yield Header(); yield Static("hello minimal"); yield DataTable(); yield Footer()
Minimal().run()
"""


def run_on_pty(cmd: list[str], env: dict[str, str], markers: tuple[bytes, ...] = ()) -> dict[str, float]:
    """Seconds from spawn to each marker's first appearance on an 80x24 pseudo-terminal, and to exit.

    Once the last marker has arrived, ctrl+q is typed (the app quits as a user would quit it)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    seen: dict[str, float] = {}
    start = time.perf_counter()

    def read() -> None:
        output = b""
        pending = list(markers)
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            output += chunk
            while pending and pending[0] in output:
                seen[pending.pop(0).decode()] = time.perf_counter() - start
                if not pending:
                    os.write(master, QUIT)

    reader = threading.Thread(target=read, daemon=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, close_fds=True)
    reader.start()
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"{cmd} did not quit; markers seen: {seen}") from None
    seen["exit"] = time.perf_counter() - start
    os.close(slave)
    reader.join(timeout=2)
    os.close(master)
    if code != 0:
        raise SystemExit(f"{cmd} exited with {code}")
    missing = [m.decode() for m in markers if m.decode() not in seen]
    if missing:
        raise SystemExit(f"{cmd}: never showed {missing}")
    return seen


def median_ms(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=9)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cep-startup-"))
    env = {**os.environ, "TERM": "xterm-256color", "CEP_HOME": str(home)}
    replay = ROOT / "cep_core" / "gpu" / "recordings" / "healthy-8x-h100.json"
    console = [sys.executable, "-m", "cep_console.app", "--home", str(home), "--replay", str(replay)]
    console_markers = (b"Sampling the GPUs", b"HOST OK")
    reference = [sys.executable, "-c", "import textual.app"]
    minimal = [sys.executable, "-c", MINIMAL_APP]
    run_on_pty(console, env, console_markers)  # warm the page cache and .pyc files
    run_on_pty(minimal, env, (b"hello minimal",))
    run_on_pty(reference, env)
    refs, consoles, minimals = [], [], []
    for _ in range(args.n):
        refs.append(run_on_pty(reference, env))
        consoles.append(run_on_pty(console, env, console_markers))
        minimals.append(run_on_pty(minimal, env, (b"hello minimal",)))
    ref = median_ms(refs, "exit")
    first = median_ms(consoles, "Sampling the GPUs")
    verdict = median_ms(consoles, "HOST OK")
    mini = median_ms(minimals, "hello minimal")
    ratio = first / ref
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )
    print(f"reference  python -c 'import textual.app' : median {ref:7.1f} ms (n={args.n})")
    print(f"cep-console start -> first frame          : median {first:7.1f} ms")
    print(f"cep-console start -> host verdict shown   : median {verdict:7.1f} ms")
    print(
        f"minimal Textual app start -> first frame  : median {mini:7.1f} ms ({mini / ref:.2f}x the reference)"
    )
    print(
        f"ratio {ratio:.2f}x (goal < {GOAL}x): {'OK' if ratio < GOAL else 'OVER GOAL'}; "
        f"{first / mini:.2f}x the minimal app"
    )


if __name__ == "__main__":
    main()
