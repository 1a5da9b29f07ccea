"""Real state for the console tests: a home filled by real step-job runs, a trace store with real captures,
GPU states from the recorded replays. Helpers to wait for the console's workers."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ROOT = HERE.parents[1]
STEP_JOB = ROOT / "tests" / "data" / "jobs" / "step_job.py"
GPU_DATA = ROOT / "tests" / "data" / "gpu"
HEALTHY = ROOT / "cep_core" / "gpu" / "recordings" / "healthy-8x-h100.json"
FALLEN = GPU_DATA / "fallen-off-bus-8x-h100.json"
NO_DRIVER = GPU_DATA / "no-driver.json"


def make_options(home: Path, **kw):
    from cep_console.options import ConsoleOptions

    kw.setdefault("traces_db", home / "traces.db")
    kw.setdefault("gpu_interval_s", 0.2)
    kw.setdefault("runs_interval_s", 0.2)
    kw.setdefault("traces_interval_s", 0.5)
    return ConsoleOptions(home=home, **kw)


def start_step_run(home: Path, name: str, steps: int = 5, delay: float = 0.05, extra: str = ""):
    """A real job through JobManager: the step job writes progress.jsonl and stdout.log like a trainer."""
    from cep_core.jobs.manager import JobManager
    from cep_core.runs import create_run_dir

    paths = create_run_dir(name, home)
    paths.run_toml.write_text(f"steps = {steps}\ndelay = {delay}\ncheckpoint_every = 2\n{extra}")
    manager = JobManager(home=home)
    return manager.start_run(paths.root, name=name, command=[sys.executable, str(STEP_JOB), str(paths.root)])


def wait_job(home: Path, job_id: str, timeout: float = 30.0):
    from cep_core.jobs.manager import JobManager
    from cep_core.jobs.registry import ACTIVE_STATES

    manager = JobManager(home=home)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.refresh(manager.registry.get(job_id))
        if job.state not in ACTIVE_STATES:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout}s")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CEP_HOME (also in the environment, so a job never writes to the user's real home)."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("CEP_HOME", str(path))
    return path


@pytest.fixture
def finished_home(home: Path) -> Path:
    """Two finished real runs: one completed, one that failed with a config error."""
    ok = start_step_run(home, "steps-ok", steps=6)
    bad = start_step_run(home, "steps-bad", steps=4, extra='fail_kind = "config"\n')
    wait_job(home, ok.id)
    wait_job(home, bad.id)
    return home


def capture_traces(db: Path, ready_agent_calls: int = 5, other_calls: int = 3) -> None:
    """Real captures through WorkflowTracer: a planner that reaches a threshold of 5 and a searcher."""
    from cep_core.tracer import WorkflowTracer

    tracer = WorkflowTracer(db, strict=True, threshold=5)
    for i in range(ready_agent_calls):
        tracer.capture_call(
            "planner",
            "main",
            "gpt-4o",
            system_prompt="You plan trips.",
            user_query=f"Plan a trip to city number {i}",
            assistant_response=f'<tool_call name="book">{{"city": "c{i}"}}</tool_call>',
            cost=0.01,
            execution_time=1.0 + i / 10,
        )
    for i in range(other_calls):
        tracer.capture_call(
            "search",
            "web",
            "gpt-4o-mini",
            user_query=f"find the zebra facts {i}",
            assistant_response="Zebras are striped.",
            success=i != 0,
            error="timeout" if i == 0 else None,
            cost=0.002,
            execution_time=0.5,
        )
    tracer.close()


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Let the app run until `predicate()` holds (workers post their messages meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


SAMPLES = ROOT / "cep_core" / "data" / "samples"


def run_evaluation(
    home: Path, work: Path, name: str, tracks: tuple[str, ...] = ("toolcall", "structured")
) -> None:
    """A real evaluation job (`cep eval`, predictions backend) of the shipped untuned-model outputs."""
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    preds = work / f"{name}-preds.jsonl"
    preds.write_text("".join((SAMPLES / f"demo_{t}_predictions.jsonl").read_text() for t in tracks))
    sets = "".join(f'[[sets]]\nsource = "{SAMPLES / f"demo_{t}.jsonl"}"\n' for t in tracks)
    config = work / f"{name}.toml"
    config.write_text(
        f'name = "{name}"\nbackend = "predictions"\nmodel = "untuned-small"\ncep = "compact"\n'
        f'{sets}[predictions]\npath = "{preds}"\n'
    )
    subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), "eval", str(config)],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests are async: anyio's pytest plugin runs them on asyncio (the loop Textual uses)."""
    return "asyncio"
