"""`cep train` registers its run as a job (backend foreground): `cep jobs list` and the console list it, a stop
from elsewhere ends it as stopped (checkpoint first), a resume starts a detached attempt from the checkpoint
(issue #14 item 13). Real training of the built-in tiny model in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from tiny_runs import cep_args, start_train, tiny_config

from cep_core.jobs.manager import JobManager


def run_cep(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        cep_args(home, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def wait_until(predicate, timeout: float = 180, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def events_text(run_dir: Path) -> str:
    try:
        return (run_dir / "progress.jsonl").read_text()
    except FileNotFoundError:
        return ""


def only_job(home: Path):
    jobs = JobManager(home=home).registry.list()
    return jobs[0] if len(jobs) == 1 else None


def test_a_run_trained_in_the_foreground_is_a_job(tmp_path):
    home = tmp_path / "home"
    config = tiny_config(tmp_path / "fg.toml", name="fg")
    proc = run_cep(home, "train", str(config), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["state"] == "succeeded" and result["result"]["status"] == "completed"
    listed = json.loads(run_cep(home, "jobs", "list", "--json").stdout)
    [job] = listed
    assert job["id"] == result["job_id"] and job["backend"] == "foreground" and job["kind"] == "train"
    assert (job["name"], job["state"], job["step"], job["attempt"]) == ("fg", "succeeded", 2, 1)
    assert job["run_dir"] == result["run_dir"] and job["exit_code"] == 0
    shown = run_cep(home, "jobs", "show", job["id"])
    assert "started in the foreground by cep train" in " ".join(shown.stdout.split())


def test_a_foreground_run_stops_from_elsewhere_and_resumes_detached(tmp_path):
    home = tmp_path / "home"
    train = start_train(home, tiny_config(tmp_path / "long.toml", name="long", steps=400, save=2))
    try:
        job = wait_until(lambda: only_job(home), what="the job row")
        assert job.backend == "foreground" and job.state == "running" and job.pid != train.pid
        run_dir = Path(job.run_dir)
        wait_until(lambda: list((run_dir / "checkpoints").glob("checkpoint-*")), what="a checkpoint")
        # Training the same run directory twice at once is refused: it would write over the checkpoints.
        twice = run_cep(home, "train", str(run_dir))
        assert twice.returncode == 2 and f"still running as job {job.id}" in twice.stderr
        stop = run_cep(home, "jobs", "stop", job.id, "--grace", "60")
        assert stop.returncode == 0, stop.stderr
        out, err = train.communicate(timeout=120)
    finally:
        if train.poll() is None:
            train.kill()
    assert train.returncode == 3, err  # the job's "stopped" exit code, reported by cep train
    assert "stopped at step" in out
    manager = JobManager(home=home)
    stopped = manager.registry.get(job.id)
    assert stopped.state == "stopped" and stopped.exit_code == 3
    resumed = manager.resume(job.id)
    assert (resumed.backend, resumed.attempt, resumed.resumes) == ("local", 2, job.id)
    try:
        start = wait_until(
            lambda: [e for e in map(json.loads, events_text(run_dir).splitlines()) if e["event"] == "start"][
                1:
            ],
            what="the second attempt's start",
        )
        assert start[0]["resumed_from"] and start[0]["resumed_from"] >= 2
    finally:
        manager.stop(resumed.id, grace_s=60)
    assert manager.registry.get(resumed.id).state == "stopped"


@pytest.mark.parametrize("signal_name", ["SIGINT"])
def test_ctrl_c_in_the_terminal_ends_the_job_as_stopped(tmp_path, signal_name):
    import signal

    home = tmp_path / "home"
    train = start_train(home, tiny_config(tmp_path / "long.toml", name="long", steps=400, save=50))
    try:
        job = wait_until(lambda: only_job(home), what="the job row")
        run_dir = Path(job.run_dir)
        wait_until(lambda: '"event": "step"' in events_text(run_dir), what="a step")
        train.send_signal(getattr(signal, signal_name))  # cep train passes it on to the job
        train.communicate(timeout=120)
    finally:
        if train.poll() is None:
            train.kill()
    job = JobManager(home=home).registry.get(job.id)
    assert job.state == "stopped" and train.returncode == 3
