"""Job control on the local backend with real processes and real signals.

The job here is a small real program that keeps the run-directory contract (tests/data/jobs/step_job.py), so
the lifecycle is tested without a model; tests/test_jobs_training.py runs the same lifecycle on the tiny model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from cep_core.errors import CepError, InputError
from cep_core.jobs.backend import Handle
from cep_core.jobs.local import LocalBackend
from cep_core.jobs.manager import JobManager
from cep_core.jobs.policy import ResumePolicy, Supervisor
from cep_core.jobs.registry import Registry
from cep_core.runs import read_progress

STEP_JOB = Path(__file__).parent / "data" / "jobs" / "step_job.py"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def make_run(home: Path, name: str, **config) -> Path:
    run_dir = home / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
    return run_dir


def start(manager, run_dir, **kw):
    return manager.start_run(run_dir, command=[sys.executable, str(STEP_JOB), str(run_dir)], **kw)


def wait_for(predicate, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def wait_state(manager, job_id, states, timeout=30.0):
    return wait_for(
        lambda: (j := manager.refresh(manager.registry.get(job_id))).state in states and j, timeout
    )


def job_child(job) -> psutil.Process:
    """The job program itself (the runner's child)."""
    return wait_for(lambda: next(iter(psutil.Process(job.pid).children()), None))


def test_job_runs_to_completion_and_is_recorded(home):
    manager = JobManager()
    run_dir = make_run(home, "ok", steps=4, delay=0.05)
    job = start(manager, run_dir)
    assert job.state == "running" and job.pid and job.start_time
    done = wait_state(manager, job.id, ("succeeded", "failed", "crashed"))
    assert done.state == "succeeded" and done.exit_code == 0 and done.reason == "completed at step 4"
    assert "step 4/4" in (run_dir / "stdout.log").read_text()
    states = [t["to_state"] for t in manager.registry.transitions(job.id)]
    assert states == ["queued", "running", "succeeded"]
    assert (run_dir / "exit.json").exists()


def test_a_job_records_into_its_launchers_home_not_the_callers_environment(home, tmp_path):
    """The console passes --home to the manager only; an evaluation job writes cep.db rows into CEP_HOME."""
    other = tmp_path / "other-home"
    manager = JobManager(home=other)  # the process's CEP_HOME is `home`
    run_dir = make_run(other, "where", steps=1, delay=0)
    seen = run_dir / "cep_home.txt"
    script = f"import os; open({str(seen)!r}, 'w').write(os.environ.get('CEP_HOME', ''))"
    job = manager.start_run(run_dir, command=[sys.executable, "-c", script])
    wait_state(manager, job.id, ("succeeded", "failed", "crashed"))
    assert seen.read_text() == str(other.resolve())


def test_sigkill_mid_run_is_a_crash_and_auto_resume_finishes_the_planned_steps(home):
    manager = JobManager()
    run_dir = make_run(home, "crashy", steps=8, delay=0.15)
    job = start(manager, run_dir)
    wait_for(lambda: any(e["event"] == "checkpoint" and e["step"] >= 2 for e in read_progress(run_dir)))
    job_child(job).send_signal(signal.SIGKILL)
    crashed = wait_state(manager, job.id, ("crashed", "succeeded", "failed"))
    assert crashed.state == "crashed" and "SIGKILL" in crashed.reason

    supervisor = Supervisor(manager, ResumePolicy(backoff_s=0), health=lambda j: (True, "CPU job"))
    decisions = supervisor.tick()
    relaunch = [d for d in decisions if d.action == "relaunch"]
    assert len(relaunch) == 1 and relaunch[0].job_id == job.id
    new = manager.registry.get(relaunch[0].new_job_id)
    assert new.attempt == 2 and new.resumes == job.id
    assert manager.registry.get(job.id).resumed_by == new.id
    finished = wait_state(manager, new.id, ("succeeded", "crashed", "failed"))
    assert finished.state == "succeeded"
    events = read_progress(run_dir)
    starts = [e for e in events if e["event"] == "start"]
    assert starts[0]["resumed_from"] is None and starts[1]["resumed_from"] >= 2
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps[-1] == 8 and sorted(set(steps)) == list(range(1, 9)), "every step happened, none was lost"
    assert any(e["event"] == "job" and e["action"] == "relaunch" for e in events)
    assert supervisor.tick() == [], "a resumed job is not relaunched twice"


def test_stop_sends_sigterm_and_the_job_ends_stopped_with_a_checkpoint(home):
    manager = JobManager()
    run_dir = make_run(home, "stoppable", steps=200, delay=0.05)
    job = start(manager, run_dir)
    wait_for(lambda: any(e["event"] == "step" for e in read_progress(run_dir)))
    stopped = manager.stop(job.id, grace_s=10)
    assert stopped.state == "stopped" and stopped.reason.startswith("stopped at step")
    last_two = [e["event"] for e in read_progress(run_dir)[-2:]]
    assert last_two == ["checkpoint", "end"]
    with pytest.raises(CepError, match="nothing to stop"):
        manager.stop(job.id)


def test_stop_kills_after_the_grace_period_when_sigterm_is_ignored(home, tmp_path):
    manager = JobManager()
    run_dir = make_run(home, "stubborn")
    script = tmp_path / "stubborn.py"
    script.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n")
    job = manager.start_run(run_dir, command=[sys.executable, str(script)])
    time.sleep(0.5)
    started = time.monotonic()
    stopped = manager.stop(job.id, grace_s=1)
    assert stopped.state == "stopped" and "killed after the grace period" in stopped.reason
    assert time.monotonic() - started < 15
    assert not psutil.pid_exists(job.pid) or psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE


def test_job_error_event_is_a_failure_not_resumed(home):
    manager = JobManager()
    run_dir = make_run(home, "badconfig", fail_kind="config")
    job = start(manager, run_dir)
    failed = wait_state(manager, job.id, ("failed", "crashed", "succeeded"))
    assert failed.state == "failed" and failed.reason.startswith("config:")
    assert Supervisor(manager, ResumePolicy(backoff_s=0), health=lambda j: (True, "")).tick() == []


def test_job_outlives_its_launcher_and_is_found_by_a_new_process(home):
    run_dir = make_run(home, "detached", steps=6, delay=0.2)
    code = (
        "import sys; from cep_core.jobs.manager import JobManager; "
        f"j = JobManager().start_run({str(run_dir)!r}, command=[sys.executable, {str(STEP_JOB)!r}, {str(run_dir)!r}]);"
        " print(j.id)"
    )
    launcher = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "CEP_HOME": str(home)},
        timeout=60,
    )
    job_id = launcher.stdout.strip()
    listing = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "jobs", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "CEP_HOME": str(home)},
        timeout=60,
    )
    rows = {row["id"]: row for row in json.loads(listing.stdout)}
    assert rows[job_id]["state"] == "running" and rows[job_id]["run_dir"] == str(run_dir.resolve())
    manager = JobManager()
    done = wait_state(manager, job_id, ("succeeded", "crashed", "failed"))
    assert done.state == "succeeded"
    row = json.loads(
        subprocess.run(
            [sys.executable, "-m", "cep_core.cli", "jobs", "show", job_id, "--json"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "CEP_HOME": str(home)},
        ).stdout
    )
    assert (row["step"], row["total_steps"]) == (6, 6)


def test_a_reused_pid_is_not_taken_for_the_job(tmp_path):
    me = psutil.Process()
    backend = LocalBackend()
    assert backend.poll(Handle("local", pid=me.pid, start_time=me.create_time()), tmp_path).alive
    assert not backend.poll(Handle("local", pid=me.pid, start_time=me.create_time() - 3600), tmp_path).alive


def test_unhealthy_gpu_makes_a_crashed_job_wait_instead_of_relaunching(home):
    manager = JobManager()
    run_dir = make_run(home, "gpu-run", steps=50, delay=0.1)
    job = start(manager, run_dir, gpus=1)
    wait_for(lambda: any(e["event"] == "step" for e in read_progress(run_dir)))
    os.killpg(os.getpgid(job.pid), signal.SIGKILL)  # the whole job, runner included: no exit record
    crashed = wait_state(manager, job.id, ("crashed",))
    assert "left no exit record" in crashed.reason

    health = {"ok": False, "why": "GPU 0: GPU has fallen off the bus (Xid 79)"}
    supervisor = Supervisor(
        manager, ResumePolicy(backoff_s=0), health=lambda j: (health["ok"], health["why"])
    )
    for _ in range(3):
        decisions = supervisor.tick()
        assert all(d.action != "relaunch" for d in decisions)
    waiting = manager.registry.get(job.id)
    assert waiting.state == "waiting" and "Xid 79" in waiting.reason
    assert [e["action"] for e in read_progress(run_dir) if e["event"] == "job"] == ["wait"], "decided once"

    health.update(ok=True, why="GPUs healthy")
    (relaunch,) = [d for d in supervisor.tick() if d.action == "relaunch"]
    assert manager.registry.get(job.id).state == "crashed"
    manager.stop(relaunch.new_job_id, grace_s=5)


def test_backoff_and_attempt_limit(home):
    manager = JobManager()
    now = [1000.0]
    run_dir = make_run(home, "limited", steps=100, delay=0.1)
    job = start(manager, run_dir)
    os.killpg(os.getpgid(job.pid), signal.SIGKILL)
    wait_state(manager, job.id, ("crashed",))
    manager.registry.transition(job.id, "crashed", "killed", ended=1000.0)
    supervisor = Supervisor(
        manager, ResumePolicy(backoff_s=30, max_attempts=2), health=lambda j: (True, ""), clock=lambda: now[0]
    )
    assert [d.action for d in supervisor.tick()] == ["scheduled"]
    now[0] = 1020.0
    assert supervisor.tick() == []
    now[0] = 1031.0
    (relaunch,) = supervisor.tick()
    assert relaunch.action == "relaunch"
    second = manager.registry.get(relaunch.new_job_id)
    os.killpg(os.getpgid(wait_for(lambda: manager.registry.get(second.id).pid)), signal.SIGKILL)
    wait_state(manager, second.id, ("crashed",))
    (gave_up,) = supervisor.tick()
    assert gave_up.action == "give_up" and "after 2 attempts" in gave_up.reason
    assert supervisor.tick() == []


def test_bad_input_is_a_clear_error(home, tmp_path):
    manager = JobManager()
    with pytest.raises(InputError, match="no such config file"):
        manager.start_config(tmp_path / "missing.toml")
    config = tmp_path / "c.toml"
    config.write_text("steps = 1\n")
    with pytest.raises(InputError, match="unknown backend 'kubernetes'"):
        manager.start_config(config, backend="kubernetes")
    with pytest.raises(InputError, match="unknown job kind 'bake'"):
        manager.start_config(config, kind="bake")
    proc = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "jobs", "start", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        env={**os.environ, "CEP_HOME": str(home)},
    )
    assert proc.returncode == 2 and "nope.toml: no such config file" in proc.stderr
    assert Registry().list() == [], "nothing was registered for the failed starts"


def test_opening_a_new_database_waits_for_a_writer_instead_of_failing(tmp_path):
    """connect() on a new file that another connection is writing waits, then switches it to WAL."""
    import sqlite3
    import threading

    from cep_core.store.db import connect

    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.5, lambda: writer.execute("COMMIT")).start()
    db = connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_cep_jobs_logs_prints_the_log_and_follows_a_running_job_to_its_end(home):
    manager = JobManager()
    run_dir = make_run(home, "logged", steps=8, delay=0.1)
    job = start(manager, run_dir)
    env = {**os.environ, "CEP_HOME": str(home)}
    followed = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "jobs", "logs", job.id, "-f"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert followed.returncode == 0, followed.stderr
    steps = [line for line in followed.stdout.splitlines() if line.startswith("step ") and "/" in line]
    assert [s.split()[1] for s in steps] == [f"{i}/8" for i in range(1, 9)]
    assert f"job {job.id} succeeded" in followed.stderr
    printed = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "jobs", "logs", job.id],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert printed.stdout == (run_dir / "stdout.log").read_text()


@pytest.mark.parametrize("columns", [80, 120])
def test_cep_jobs_list_keeps_the_whole_id_at_80_columns(home, columns):
    manager = JobManager()
    job = start(manager, make_run(home, "a-run-with-a-rather-long-name", steps=2, delay=0.01))
    wait_state(manager, job.id, ("succeeded",))
    listed = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "jobs", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CEP_HOME": str(home), "COLUMNS": str(columns)},
    )
    assert listed.returncode == 0, listed.stderr
    assert max(len(line) for line in listed.stdout.splitlines()) <= columns
    row = next(line for line in listed.stdout.splitlines() if job.id in line)  # whole, never cut
    assert "succeeded" in row and "2/2" in row
    header = next(line for line in listed.stdout.splitlines() if line.split()[:2] == ["id", "name"])
    assert ("backend" in header) is (columns >= 100)
    assert ("cep jobs show ID" in listed.stdout) is (columns < 100)


@pytest.mark.parametrize("restart_count, run", [(None, 0), ("2", 2), ("junk", 0)])
def test_the_runner_records_which_run_of_the_job_it_is(tmp_path, restart_count, run):
    """Slurm reruns a requeued job under the same id and run directory; the records say which run wrote them."""
    env = {k: v for k, v in os.environ.items() if k != "SLURM_RESTART_COUNT"}
    if restart_count is not None:
        env["SLURM_RESTART_COUNT"] = restart_count
    before = time.time()
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "cep_core.jobs.runner",
            str(tmp_path),
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(3)",
        ],
        env=env,
        timeout=60,
    ).returncode
    started = json.loads((tmp_path / "runner.json").read_text())
    ended = json.loads((tmp_path / "exit.json").read_text())
    assert code == 3 and ended["returncode"] == 3
    assert started["run"] == ended["run"] == run
    assert before <= started["started"] <= ended["ended"] <= time.time()
