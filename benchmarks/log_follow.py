"""The console's log view under a flood: a writer process appends 100,000 progress lines as fast as it can
while the console's follower (LogFollower: watchfiles.awatch + LogTail, in a running Textual app) shows them.
Goal: the view lags under 250 ms and memory stays flat.

Lag of a batch = the moment the view applied it - the time stamp the writer put in its last line. Memory =
this process's RSS, sampled every 50 ms (the view keeps at most 2,000 lines, however long the log grows).
Reference, in the same run: the same writer followed by a bare LogTail polling loop (no UI, no watchfiles),
the floor for reading the file at all; the ratio of the console's p95 lag to it is printed.

Run: .venv/bin/python benchmarks/log_follow.py [--lines 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.app import App, ComposeResult  # noqa: E402

from cep_console.messages import LogLines  # noqa: E402
from cep_console.widgets.log_follower import LogFollower  # noqa: E402
from cep_core.runs.tail import LogTail  # noqa: E402

GOAL_MS = 250.0
WRITER = """
import json, sys, time
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "a", buffering=1) as out:
    for i in range(1, n + 1):
        out.write(json.dumps({"ts": time.time(), "event": "step", "step": i, "total_steps": n,
                              "loss": 1.0 / i, "tokens_per_s": 812.5}) + "\\n")
"""


def line_ts(line: str) -> float | None:
    start = line.find('"ts": ')
    if start < 0:
        return None
    try:
        return float(line[start + 6 : line.index(",", start)])
    except ValueError:
        return None


class MeasuredFollower(LogFollower):
    def __init__(self, lags: list[float], **kw):
        super().__init__(**kw)
        self.lags = lags
        self.last_step_line = ""

    def on_log_lines(self, message: LogLines) -> None:
        # Textual also runs LogFollower.on_log_lines (handlers of every class in the MRO): no super() here.
        if message.lines:
            ts = line_ts(message.lines[-1])
            if ts is not None:
                self.lags.append(time.time() - ts)
            self.last_step_line = message.lines[-1]


class FollowApp(App):
    def __init__(self, path: Path, lags: list[float]):
        super().__init__()
        self.path = path
        self.lags = lags

    def compose(self) -> ComposeResult:
        yield MeasuredFollower(self.lags)

    def on_mount(self) -> None:
        self.query_one(LogFollower).follow(self.path)


def start_writer(path: Path, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)])


def sample_rss(stop: threading.Event, out: list[int]) -> None:
    proc = psutil.Process()
    while not stop.is_set():
        out.append(proc.memory_info().rss)
        time.sleep(0.05)


async def console_run(path: Path, n: int) -> dict:
    lags: list[float] = []
    app = FollowApp(path, lags)
    rss: list[int] = []
    stop = threading.Event()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        sampler = threading.Thread(target=sample_rss, args=(stop, rss), daemon=True)
        sampler.start()
        start = time.time()
        writer = start_writer(path, n)
        follower = app.query_one(MeasuredFollower)
        while writer.poll() is None:
            await pilot.pause(0.05)
        wrote_s = time.time() - start
        done_at = time.time()
        while f'"step": {n},' not in follower.last_step_line and time.time() - done_at < 10:
            await pilot.pause(0.01)
        catch_up = time.time() - done_at
        stop.set()
        sampler.join()
        shown = len(follower.lines)
        seen = follower.lines_seen
    return {"lags": lags, "wrote_s": wrote_s, "catch_up": catch_up, "rss": rss, "shown": shown, "seen": seen}


def reference_run(path: Path, n: int) -> list[float]:
    tail = LogTail(path)
    lags = []
    writer = start_writer(path, n)
    while True:
        update = tail.read_new()
        if update.lines:
            ts = line_ts(update.lines[-1])
            if ts is not None:
                lags.append(time.time() - ts)
            if f'"step": {n},' in update.lines[-1]:
                break
        elif writer.poll() is not None and not update.lines and tail.offset >= os.path.getsize(path):
            break
        time.sleep(0.005)
    writer.wait()
    return lags


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(int(q * len(values)), len(values) - 1)] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cep-logfollow-"))
    ref_lags = reference_run(work / "reference.log", args.lines)
    result = asyncio.run(console_run(work / "stdout.log", args.lines))
    lags = result["lags"]
    rss = result["rss"]
    p50, p95, worst = pct(lags, 0.5) * 1000, pct(lags, 0.95) * 1000, max(lags) * 1000
    ref95 = pct(ref_lags, 0.95) * 1000
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(
        f"writer: {args.lines} lines ({os.path.getsize(work / 'stdout.log') / 1e6:.1f} MB) in "
        f"{result['wrote_s']:.2f} s ({args.lines / result['wrote_s']:.0f} lines/s)"
    )
    print(
        f"reference (bare LogTail poll, no UI): lag p50 {pct(ref_lags, 0.5) * 1000:.1f} ms, "
        f"p95 {ref95:.1f} ms over {len(ref_lags)} reads"
    )
    print(
        f"console view: lag p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms over {len(lags)} batches; "
        f"caught up {result['catch_up'] * 1000:.0f} ms after the writer ended"
    )
    print(
        f"console view: lines received {result['seen']} of {args.lines} (the rest skipped by design when "
        f"the view falls >256 KiB behind), kept in the view {result['shown']} (bounded)"
    )
    quarter = max(len(rss) // 4, 1)
    means = [statistics.mean(rss[i * quarter : (i + 1) * quarter] or rss[-1:]) / 2**20 for i in range(4)]
    print(
        f"memory (RSS): before {rss[0] / 2**20:.1f} MiB; mean per quarter of the run "
        + " / ".join(f"{m:.1f}" for m in means)
        + f" MiB; peak {max(rss) / 2**20:.1f} MiB "
        f"(growth from the 2nd quarter to the last: {means[3] - means[1]:+.1f} MiB)"
    )
    print(
        f"p95 lag {p95:.0f} ms (goal < {GOAL_MS:.0f} ms): {'OK' if p95 < GOAL_MS else 'OVER GOAL'}; "
        f"max {worst:.0f} ms; {p95 / ref95:.1f}x the bare reader's p95"
    )


if __name__ == "__main__":
    main()
