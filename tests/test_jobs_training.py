"""Job control with the real training job on the built-in tiny model (CPU): start, follow, crash, auto-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from importlib import resources
from pathlib import Path

import psutil
import pytest

from cep_core.jobs.manager import JobManager
from cep_core.jobs.policy import ResumePolicy, Supervisor
from cep_core.runs import read_progress


def short_demo_config(path: Path, steps: int = 24, save_steps: int = 6) -> Path:
    """The shipped demo config with fewer steps, so a test trains in seconds."""
    demo = (resources.files("cep_core") / "training" / "configs" / "demo.toml").read_text()
    config = tomllib.loads(demo)
    lines = demo.replace(f"max_steps = {config['train']['max_steps']}", f"max_steps = {steps}")
    lines = lines.replace(f"save_steps = {config['train']['save_steps']}", f"save_steps = {save_steps}")
    path.write_text(lines)
    assert tomllib.loads(path.read_text())["train"]["max_steps"] == steps
    return path


def wait_for(predicate, timeout=180.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "home"


def test_started_job_is_listed_followed_and_finishes(home, tmp_path):
    config = short_demo_config(tmp_path / "demo.toml", steps=12, save_steps=6)
    env = {**os.environ, "CEP_HOME": str(home)}
    started = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "jobs", "start", str(config), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    job = json.loads(started.stdout)
    assert job["state"] == "running" and job["kind"] == "train" and job["backend"] == "local"
    follow = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "jobs", "logs", job["id"], "-f"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert follow.returncode == 0
    assert f"job {job['id']} succeeded" in follow.stderr
    listing = json.loads(
        subprocess.run(
            [sys.executable, "-m", "cep_core.cli", "jobs", "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
    )
    (row,) = [r for r in listing if r["id"] == job["id"]]
    assert row["state"] == "succeeded" and (row["step"], row["total_steps"]) == (12, 12)
    assert (Path(row["run_dir"]) / "adapter").is_dir()


def test_sigkill_after_a_checkpoint_auto_resumes_to_the_planned_steps(home, tmp_path):
    manager = JobManager()
    job = manager.start_config(short_demo_config(tmp_path / "demo.toml", steps=24, save_steps=6))
    run_dir = Path(job.run_dir)
    wait_for(lambda: any(e["event"] == "checkpoint" for e in read_progress(run_dir)))
    os.killpg(os.getpgid(job.pid), signal.SIGKILL)
    crashed = wait_for(lambda: (j := manager.refresh(manager.registry.get(job.id))).state != "running" and j)
    assert crashed.state == "crashed"

    supervisor = Supervisor(manager, ResumePolicy(backoff_s=0), health=lambda j: (True, "CPU job"))
    (relaunch,) = [d for d in supervisor.tick() if d.action == "relaunch"]
    done = wait_for(
        lambda: (
            (j := manager.refresh(manager.registry.get(relaunch.new_job_id))).state
            not in ("running", "queued")
            and j
        ),
        timeout=300,
    )
    assert done.state == "succeeded", done.reason
    events = read_progress(run_dir)
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from"] >= 6
    resumed_at = events.index(starts[1])
    after = [e["step"] for e in events[resumed_at:] if e["event"] == "step"]
    assert after and after[0] > starts[1]["resumed_from"], "the step count continues from the checkpoint"
    assert events[-1]["event"] == "end" and events[-1]["step"] == 24
    assert not psutil.pid_exists(job.pid) or psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE


def test_stop_ends_the_training_cleanly_with_a_checkpoint(home, tmp_path):
    manager = JobManager()
    job = manager.start_config(short_demo_config(tmp_path / "demo.toml", steps=400, save_steps=200))
    run_dir = Path(job.run_dir)
    wait_for(lambda: any(e["event"] == "step" for e in read_progress(run_dir)))
    stopped = manager.stop(job.id, grace_s=60)
    assert stopped.state == "stopped", stopped.reason
    events = read_progress(run_dir)
    assert events[-1]["event"] == "end" and events[-1]["status"] == "stopped"
    assert any(e["event"] == "checkpoint" for e in events)
