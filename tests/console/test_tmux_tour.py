"""The tour a new user takes, in a real terminal: `cep-console --demo` in tmux at 80x24, every screen visited
from the keyboard, each read back with `tmux capture-pane` as the user's eyes would see it (plain text: what
colour alone says is lost, as on many terminals). Checks that text fits: no line wider than the terminal, no
stray scrollbar glyph at the right edge, the replay named as a replay, the charts drawn with axes. Quitting
removes the demo home.

Needs tmux (CI installs it): skipped without it, except under CI, where its absence fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

WIDTH, HEIGHT = 80, 24
STRAY = set("▁▂▃▄▅▆▇▉▊▋▌▍▎▏")  # half-block glyphs of a scrollbar thumb's ends
BIN = Path(sys.executable).parent

if shutil.which("tmux") is None:
    if os.environ.get("CI"):
        raise RuntimeError("tmux is not installed: .ci/run installs it for this test")
    pytest.skip("tmux is not installed (apt-get install tmux)", allow_module_level=True)


class Tmux:
    def __init__(self, name: str, env: dict[str, str]):
        self.name = name
        self.env = env

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, check=True, env=self.env
        ).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", self.name, key)
            time.sleep(0.3)

    def wait(self, predicate, timeout: float = 40.0, what: str = "") -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")


def fits(text: str) -> None:
    lines = text.splitlines()
    assert len(lines) <= HEIGHT and all(len(line) <= WIDTH for line in lines), text
    edge = {line[WIDTH - 1] for line in lines if len(line) == WIDTH}
    assert not edge & STRAY, f"stray glyphs {edge & STRAY} at the right edge:\n{text}"


@pytest.fixture
def tour(tmp_path):
    name = f"cep-tour-{os.getpid()}"
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
        "TMPDIR": str(tmp_path),  # the demo home goes here (tempfile), so the test sees it removed
        "HF_HUB_OFFLINE": "1",
        "LANG": "C.UTF-8",
    }
    session = Tmux(name, env)
    session.run(
        "new-session", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT), f"{BIN / 'cep-console'} --demo"
    )
    yield session, tmp_path
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, env=env, check=False)


def test_a_new_users_tour_of_every_screen(tour):
    t, tmp = tour
    text = t.wait(lambda s: "HOST OK" in s and "Demo home" in s, what="the replayed host and the demo home")
    assert "REPLAY of healthy-8x-h100.json" in text
    demo_homes = list(tmp.glob("cep-demo-*"))
    assert len(demo_homes) == 1
    fits(text)

    t.keys("h")  # GPU history: charts with axes and units
    text = t.wait(lambda s: "seconds ago" in s and "util %" in s, what="the GPU history")
    fits(text)
    t.keys("Escape")

    t.keys("2")  # Runs: the demo's evaluation job
    text = t.wait(lambda s: "sample-outputs" in s and "succeeded" in s, what="the runs")
    assert "sample-outputs succeeded · attempt 1" in text
    fits(text)
    t.keys("d")  # the demo run's form and its pre-flight; the override reads unticked without colour
    text = t.wait(lambda s: "OK   model: built-in tiny" in s, timeout=90, what="the demo pre-flight")
    assert "▐ ▌ launch despite warnings" in text
    fits(text)
    t.keys("Escape")

    t.keys("3")  # Evals: the sample evaluation, its figures beside the baselines, JSON as JSON
    text = t.wait(lambda s: "sample-outputs" in s and "▲" in s, what="the evaluations")
    assert "{'" not in text
    fits(text)
    t.keys("n")  # the evaluation form for a model
    text = t.wait(lambda s: "Evaluate · ctrl+l start" in s, what="the evaluation form")
    assert "bfcl:simple_python,multiple,irrelevance" in text
    fits(text)
    t.keys("Escape")

    t.keys("4")  # Traces
    text = t.wait(lambda s: "travel/planner" in s and "READY" in s, what="the traces")
    fits(text)

    t.keys("?")
    text = t.wait(lambda s: "help (esc closes)" in s, what="help")
    fits(text)
    t.keys("Escape", "q")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and demo_homes[0].exists():
        time.sleep(0.2)
    assert not demo_homes[0].exists()  # nothing was left running: the demo home is gone
