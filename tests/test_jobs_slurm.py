"""The Slurm backend, against a real single-node Slurm cluster (scripts/slurm-up.sh).

Tests marked `slurm` submit real jobs with sbatch and follow them with squeue/scontrol; they skip, saying why,
when no cluster answers. The sbatch script and the output parsers are tested without a cluster.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cep_core.errors import CepError
from cep_core.jobs.backend import EXIT_FILE, LOG_FILE, Handle, LaunchSpec, Status
from cep_core.jobs.slurm.backend import SlurmBackend
from cep_core.jobs.slurm.parsers import (
    SLURM_STATES,
    map_state,
    normalize_state,
    parse_exit_code,
    parse_job_id,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
)
from cep_core.jobs.slurm.script import SBATCH_FILE, sbatch_script

JOB_TIMEOUT_S = 60.0

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def backend(slurm_cluster: str) -> SlurmBackend:
    return SlurmBackend(command_timeout=20)


JobScript = Callable[..., list[str]]


@pytest.fixture
def job_script(tmp_path: Path) -> JobScript:
    """Writes a small job (a Python script) and returns its command; reusable for other Slurm/local tests.

    The job writes `step` events to RUN_DIR/progress.jsonl, then `end{completed}`. Options:
    steps, step_s (seconds per step), on_term ("stop": write end{stopped} and exit 0; "ignore": note it and go
    on; "default": die of the signal), exit_code (exit with it instead of ending cleanly), kill_self_at (SIGKILL
    itself at that step on the first attempt only: a crash the next attempt resumes from `checkpoint.json`),
    kill_all_on_rerun (when Slurm runs it again after a requeue, SIGKILL the runner and itself at once).
    It writes its pid to RUN_DIR/job.pid and its environment's CEP_TEST_* / HF_TOKEN values to env.json.
    """

    def make(
        run_dir: Path,
        steps: int = 3,
        step_s: float = 0.1,
        on_term: str = "stop",
        exit_code: int = 0,
        kill_self_at: int | None = None,
        kill_all_on_rerun: bool = False,
    ) -> list[str]:
        script = tmp_path / f"job_{len(list(tmp_path.glob('job_*.py')))}.py"
        script.write_text(
            textwrap.dedent(
                f"""
                import json, os, signal, sys, time
                run_dir = sys.argv[1]
                steps, step_s, on_term = {steps}, {step_s}, {on_term!r}
                exit_code, kill_self_at = {exit_code}, {kill_self_at!r}
                if {kill_all_on_rerun!r} and int(os.environ.get("SLURM_RESTART_COUNT", "0")) > 0:
                    print("second run: the whole job is killed", flush=True)
                    os.kill(os.getppid(), signal.SIGKILL)  # the runner: as the OOM killer or a lost node would
                    os.kill(os.getpid(), signal.SIGKILL)
                def emit(**event):
                    event["ts"] = time.time()
                    with open(os.path.join(run_dir, "progress.jsonl"), "a") as out:
                        out.write(json.dumps(event) + "\\n")
                state = {{"step": 0}}
                def on_sigterm(signum, frame):
                    emit(event="term_received", step=state["step"])
                    if on_term == "stop":
                        emit(event="end", status="stopped", step=state["step"])
                        sys.exit(0)
                if on_term != "default":
                    signal.signal(signal.SIGTERM, on_sigterm)
                with open(os.path.join(run_dir, "job.pid"), "w") as out:
                    out.write(str(os.getpid()))
                with open(os.path.join(run_dir, "env.json"), "w") as out:
                    json.dump({{k: v for k, v in os.environ.items() if k.startswith("CEP_TEST_") or k == "HF_TOKEN"}}, out)
                checkpoint = os.path.join(run_dir, "checkpoint.json")
                first = 1
                if os.path.exists(checkpoint):
                    with open(checkpoint) as f:
                        first = json.load(f)["step"] + 1
                print("job started at step", first, flush=True)
                for step in range(first, steps + 1):
                    state["step"] = step
                    emit(event="step", step=step, total_steps=steps)
                    with open(checkpoint, "w") as f:
                        json.dump({{"step": step}}, f)
                    if kill_self_at == step and first == 1:
                        os.kill(os.getpid(), signal.SIGKILL)
                    time.sleep(step_s)
                if exit_code:
                    print("job fails with", exit_code, flush=True)
                    sys.exit(exit_code)
                emit(event="end", status="completed", step=steps)
                print("job done", flush=True)
                """
            )
        )
        return [sys.executable, str(script), str(run_dir)]

    return make


def run_dir_for(tmp_path: Path, name: str = "run") -> Path:
    path = tmp_path / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def spec_for(run_dir: Path, command: list[str], partition: str | None = None, **fields) -> LaunchSpec:
    return LaunchSpec(
        job_id=f"j-{run_dir.name}",
        kind="train",
        run_dir=run_dir,
        command=command,
        name=fields.pop("name", "cep test job"),
        partition=partition,
        **fields,
    )


def follow(
    backend: SlurmBackend, handle: Handle, run_dir: Path, timeout: float = JOB_TIMEOUT_S
) -> list[Status]:
    """Poll until the job is no longer alive; every status seen, the last one being the end."""
    seen: list[Status] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.poll(handle, run_dir)
        seen.append(status)
        if not status.alive:
            return seen
        time.sleep(0.2)
    pytest.fail(f"Slurm job {handle.slurm_id} still alive after {timeout}s: {seen[-1]}")


def wait_for(predicate: Callable[[], bool], timeout: float = JOB_TIMEOUT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "progress.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def requeue_at_step_2_and_follow(backend: SlurmBackend, handle: Handle, run_dir: Path) -> Status:
    """What preemption does with --requeue: at step 2 Slurm stops the job, then runs it again; its last status."""
    wait_for(lambda: any(e.get("step") == 2 for e in events(run_dir)), what="step 2")
    subprocess.run(["scontrol", "requeue", handle.slurm_id], check=True, timeout=20)
    wait_for(lambda: backend.poll(handle, run_dir).state == "queued", what="the job to be queued again")
    # Slurm holds a requeued job back for two minutes; let it start in a few seconds. Not "now": slurmd
    # revokes the first run's credential and compares times to the second, so a start within the same
    # second is killed as "Job credential revoked" (seen on CI, and here 2 runs in 5).
    subprocess.run(
        ["scontrol", "update", f"JobId={handle.slurm_id}", "StartTime=now+3"], check=True, timeout=20
    )
    return follow(backend, handle, run_dir)[-1]


# ------------------------------------------------------------------------------------------------ real cluster


@pytest.mark.slurm
def test_job_is_submitted_followed_and_succeeds(backend, slurm_cluster, job_script, tmp_path):
    run_dir = run_dir_for(tmp_path, "ok run")  # a space in the path: quoting must hold
    secret = "hf_secret_value_123"
    odd = "two words, $HOME and 'quotes'"
    spec = spec_for(
        run_dir,
        job_script(run_dir, steps=3, step_s=0.1),
        slurm_cluster,
        env={"CEP_TEST_VALUE": odd, "HF_TOKEN": secret},
    )
    handle = backend.start(spec)
    assert handle.backend == "slurm" and handle.slurm_id and handle.slurm_id.isdigit()
    seen = follow(backend, handle, run_dir)
    end = seen[-1]
    assert [s.state for s in seen[:-1]] and all(s.state in ("queued", "running") for s in seen[:-1])
    assert end.state == "succeeded", end
    assert end.exit_code == 0 and end.scheduler_state == "COMPLETED"
    kinds = [(e["event"], e.get("step")) for e in events(run_dir)]
    assert kinds == [("step", 1), ("step", 2), ("step", 3), ("end", 3)]
    assert json.loads((run_dir / EXIT_FILE).read_text())["returncode"] == 0
    assert "job done" in (run_dir / LOG_FILE).read_text()  # --output went to RUN_DIR/stdout.log
    # The environment arrived intact, and the token never sat in the script.
    assert json.loads((run_dir / "env.json").read_text()) == {"CEP_TEST_VALUE": odd, "HF_TOKEN": secret}
    assert secret not in (run_dir / SBATCH_FILE).read_text()


@pytest.mark.slurm
def test_stop_sends_sigterm_first_and_the_job_ends_stopped(backend, slurm_cluster, job_script, tmp_path):
    run_dir = run_dir_for(tmp_path)
    handle = backend.start(spec_for(run_dir, job_script(run_dir, steps=100, step_s=0.5), slurm_cluster))
    wait_for(lambda: any(e["event"] == "step" for e in events(run_dir)), what="the job's first step")
    began = time.monotonic()
    backend.stop(handle, grace_s=20)
    assert time.monotonic() - began < 10  # it ended on SIGTERM, well before the grace period ran out
    end = follow(backend, handle, run_dir)[-1]
    assert end.state == "stopped", end
    names = [e["event"] for e in events(run_dir)]
    assert names[-2:] == ["term_received", "end"] and events(run_dir)[-1]["status"] == "stopped"
    assert end.scheduler_state == "COMPLETED"  # the job chose to exit 0: SIGTERM, not a cancel, ended it


@pytest.mark.slurm
def test_stop_cancels_a_job_that_ignores_sigterm_after_the_grace_period(
    backend, slurm_cluster, job_script, tmp_path
):
    run_dir = run_dir_for(tmp_path)
    handle = backend.start(
        spec_for(run_dir, job_script(run_dir, steps=200, step_s=0.5, on_term="ignore"), slurm_cluster)
    )
    wait_for(lambda: any(e["event"] == "step" for e in events(run_dir)), what="the job's first step")
    began = time.monotonic()
    backend.stop(handle, grace_s=1.5)
    assert time.monotonic() - began >= 1.5
    end = follow(backend, handle, run_dir)[-1]
    assert end.scheduler_state == "CANCELLED" and end.state == "stopped", end
    assert "by cep" in end.reason
    assert "term_received" in [e["event"] for e in events(run_dir)]  # SIGTERM came first
    assert not any(e["event"] == "end" for e in events(run_dir))


@pytest.mark.slurm
def test_a_pending_job_is_cancelled_without_signals(backend, slurm_cluster, job_script, tmp_path):
    run_dir = run_dir_for(tmp_path)
    spec = spec_for(run_dir, job_script(run_dir), slurm_cluster, extra_sbatch=["--hold"])
    handle = backend.start(spec)
    status = backend.poll(handle, run_dir)
    assert status.alive and status.state == "queued" and status.scheduler_state == "PENDING"
    assert "JobHeldUser" in status.reason
    backend.stop(handle, grace_s=5)
    end = backend.poll(handle, run_dir)
    assert not end.alive and end.state == "stopped" and end.scheduler_state == "CANCELLED"
    assert events(run_dir) == []  # it never ran


@pytest.mark.slurm
def test_a_cancel_from_outside_is_a_stop_that_says_so(backend, slurm_cluster, job_script, tmp_path):
    run_dir = run_dir_for(tmp_path)
    handle = backend.start(spec_for(run_dir, job_script(run_dir, steps=100, step_s=0.5), slurm_cluster))
    wait_for(lambda: (run_dir / "job.pid").exists(), what="the job to start")
    subprocess.run(["scancel", handle.slurm_id], check=True, timeout=20)
    end = follow(backend, handle, run_dir)[-1]
    assert end.state == "stopped" and "outside cep" in end.reason, end


@pytest.mark.slurm
def test_a_job_exiting_non_zero_is_a_crash_with_its_status(backend, slurm_cluster, job_script, tmp_path):
    run_dir = run_dir_for(tmp_path)
    handle = backend.start(spec_for(run_dir, job_script(run_dir, steps=1, exit_code=3), slurm_cluster))
    end = follow(backend, handle, run_dir)[-1]
    assert end.scheduler_state == "FAILED"
    assert end.state == "crashed" and end.exit_code == 3 and end.signal is None, end
    assert "exited with status 3" in end.reason


@pytest.mark.slurm
def test_a_job_process_killed_by_sigkill_is_a_crash(backend, slurm_cluster, job_script, tmp_path):
    run_dir = run_dir_for(tmp_path)
    handle = backend.start(spec_for(run_dir, job_script(run_dir, steps=100, step_s=0.5), slurm_cluster))
    wait_for(lambda: (run_dir / "job.pid").exists(), what="the job to start")
    os.kill(int((run_dir / "job.pid").read_text()), signal.SIGKILL)  # the OOM killer, a segfault...
    end = follow(backend, handle, run_dir)[-1]
    assert end.state == "crashed" and end.signal == signal.SIGKILL, end
    assert "SIGKILL" in end.reason and end.scheduler_state == "FAILED"


@pytest.mark.slurm
def test_a_whole_job_killed_leaves_no_exit_record_and_is_a_crash(
    backend, slurm_cluster, job_script, tmp_path
):
    run_dir = run_dir_for(tmp_path)
    handle = backend.start(spec_for(run_dir, job_script(run_dir, steps=100, step_s=0.5), slurm_cluster))
    wait_for(lambda: (run_dir / "job.pid").exists(), what="the job to start")
    job_pid = int((run_dir / "job.pid").read_text())
    runner_pid = psutil.Process(job_pid).ppid()  # the batch step: the runner, exec'd by the sbatch script
    assert "cep_core.jobs.runner" in " ".join(psutil.Process(runner_pid).cmdline())
    os.kill(runner_pid, signal.SIGKILL)  # the kernel's OOM killer taking the whole job, say
    os.kill(job_pid, signal.SIGKILL)
    end = follow(backend, handle, run_dir)[-1]
    assert not (run_dir / EXIT_FILE).exists()
    assert end.scheduler_state == "FAILED"
    assert end.state == "crashed", end
    assert "no exit record" in end.reason


@pytest.mark.slurm
def test_a_requeued_job_runs_again_under_the_same_id_and_continues_from_its_checkpoint(
    backend, slurm_cluster, job_script, tmp_path
):
    """What preemption or a node failure does with --requeue: Slurm stops the job and runs it again."""
    run_dir = run_dir_for(tmp_path)
    handle = backend.start(spec_for(run_dir, job_script(run_dir, steps=6, step_s=0.4), slurm_cluster))
    end = requeue_at_step_2_and_follow(backend, handle, run_dir)
    assert end.state == "succeeded", end
    steps = [e["step"] for e in events(run_dir) if e["event"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # no step ran twice
    log = (run_dir / LOG_FILE).read_text()
    assert log.count("job started at step") == 2 and "job started at step 1" in log  # both runs, appended


@pytest.mark.slurm
def test_a_requeued_job_killed_on_its_next_run_is_a_crash_not_its_first_runs_stop(
    backend, slurm_cluster, job_script, tmp_path
):
    """Preempted (it stops cleanly, `end{stopped}`), requeued, and then killed whole on the next run: that run
    left no record, so it crashed and auto-resume must take it; the first run's stop is not its end."""
    run_dir = run_dir_for(tmp_path)
    command = job_script(run_dir, steps=6, step_s=0.4, kill_all_on_rerun=True)
    handle = backend.start(spec_for(run_dir, command, slurm_cluster))
    end = requeue_at_step_2_and_follow(backend, handle, run_dir)
    assert [e["status"] for e in events(run_dir) if e["event"] == "end"] == ["stopped"]  # the first run's
    assert "second run: the whole job is killed" in (run_dir / LOG_FILE).read_text()
    assert end.state == "crashed", end
    assert "no exit record" in end.reason and "ended stopped" not in end.reason, end.reason


@pytest.mark.slurm
def test_crash_and_resume_through_the_job_manager(slurm_cluster, job_script, tmp_path, monkeypatch):
    """The registry's lifecycle on Slurm: a job SIGKILLs itself mid-run, is resumed, and continues its steps."""
    from cep_core.jobs.manager import JobManager

    monkeypatch.setenv("CEP_HOME", str(tmp_path / "home"))
    manager = JobManager(home=tmp_path / "home")
    run_dir = run_dir_for(tmp_path)
    command = job_script(run_dir, steps=4, step_s=0.1, kill_self_at=2)
    job = manager.start_run(run_dir, backend="slurm", command=command, partition=slurm_cluster)
    assert job.state == "queued" and job.slurm_id

    def settled(job_id: str) -> bool:
        return manager.refresh(manager.registry.get(job_id)).state not in ("queued", "running")

    wait_for(lambda: settled(job.id), what="the first attempt to end")
    crashed = manager.registry.get(job.id)
    assert crashed.state == "crashed", crashed.reason
    resumed = manager.resume(job.id)
    assert resumed.attempt == 2 and resumed.slurm_id != job.slurm_id
    wait_for(lambda: settled(resumed.id), what="the second attempt to end")
    final = manager.registry.get(resumed.id)
    assert final.state == "succeeded", final.reason
    steps = [e["step"] for e in events(run_dir) if e["event"] == "step"]
    assert steps == [1, 2, 3, 4]  # continued from the checkpoint: nothing repeated, nothing lost


@pytest.mark.slurm
def test_sbatch_refusal_reports_its_stderr(backend, job_script, tmp_path):
    run_dir = run_dir_for(tmp_path)
    with pytest.raises(CepError, match=r"sbatch refused .*job\.sbatch: .*[Pp]artition"):
        backend.start(spec_for(run_dir, job_script(run_dir), partition="no-such-partition"))


@pytest.mark.slurm
def test_a_job_slurm_has_forgotten_is_judged_by_its_exit_record(backend, tmp_path):
    run_dir = run_dir_for(tmp_path)
    handle = Handle(backend="slurm", slurm_id="987654321", start_time=time.time())
    gone = backend.poll(handle, run_dir)
    assert not gone.alive and gone.state == "crashed" and "no longer lists" in gone.reason
    (run_dir / EXIT_FILE).write_text(json.dumps({"returncode": 0, "signal": None, "ended": time.time()}))
    done = backend.poll(handle, run_dir)
    assert not done.alive and done.state == "succeeded" and done.exit_code == 0
    # An exit record older than this submission belongs to an earlier attempt and proves nothing.
    stale = Handle(backend="slurm", slurm_id="987654321", start_time=time.time() + 3600)
    assert backend.poll(stale, run_dir).state == "crashed"


@pytest.mark.slurm
def test_an_unreachable_controller_is_not_taken_for_the_end_of_the_job(slurm_cluster, tmp_path, monkeypatch):
    conf = Path(os.environ["SLURM_CONF"]) if "SLURM_CONF" in os.environ else None
    if conf is None or not conf.is_file():
        pytest.skip("needs the slurm.conf written by scripts/slurm-up.sh (SLURM_CONF)")
    dead = tmp_path / "slurm.conf"
    # The same cluster description, but the controller's port has nobody listening.
    lines = [
        "SlurmctldPort=1" if line.startswith("SlurmctldPort=") else line
        for line in conf.read_text().splitlines()
    ]
    dead.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SLURM_CONF", str(dead))
    backend = SlurmBackend(command_timeout=2)
    run_dir = run_dir_for(tmp_path)
    handle = Handle(backend="slurm", slurm_id="1", start_time=time.time())
    status = backend.poll(handle, run_dir)
    assert status.alive and "state unknown" in status.reason, status


# ------------------------------------------------------------------------------------------------ no cluster needed


def test_sbatch_script_holds_resources_output_and_a_quoted_command(tmp_path):
    run_dir = tmp_path / "it's a run"
    spec = LaunchSpec(
        job_id="j1",
        kind="train",
        run_dir=run_dir,
        command=[sys.executable, "-m", "cep_core.training", str(run_dir), "--flag=a b"],
        env={"CEP_TEST_X": "x y'z", "HF_TOKEN": "hf_abc", "WANDB_API_KEY": "k1"},
        gpus=2,
        name="llama 8b; rm -rf /",
        partition="gpu",
        cpus=8,
        mem="32G",
        time_limit="04:00:00",
        extra_sbatch=["--exclusive"],
    )
    text = sbatch_script(spec)
    directives = [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH ")]
    parsed = [shlex.split(d)[0] for d in directives]
    assert parsed == [
        "--job-name=llama 8b; rm -rf /",
        f"--output={run_dir}/stdout.log",
        "--open-mode=append",
        "--requeue",
        "--export=ALL",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=8",
        "--partition=gpu",
        "--gres=gpu:2",
        "--mem=32G",
        "--time=04:00:00",
        "--exclusive",
    ]
    exec_line = [line for line in text.splitlines() if line.startswith("exec ")][0]
    assert shlex.split(exec_line)[1:] == [
        sys.executable,
        "-m",
        "cep_core.jobs.runner",
        str(run_dir),
        "--",
        *spec.command,
    ]
    assert "hf_abc" not in text and "k1" not in text and "export CEP_TEST_X='x y'\"'\"'z'" in text


def test_sbatch_script_asks_for_gpus_only_when_the_job_uses_them(tmp_path):
    base = dict(job_id="j", kind="train", run_dir=tmp_path, command=["true"])
    assert "--gres" not in sbatch_script(LaunchSpec(**base, gpus=0))
    assert "--partition" not in sbatch_script(LaunchSpec(**base))
    assert "#SBATCH --gres=gpu:1\n" in sbatch_script(LaunchSpec(**base, gpus=1))


def test_the_sbatch_script_runs_the_exact_command_under_bash(tmp_path):
    """Execute the script's body (bash ignores #SBATCH lines): the job sees the same argv and environment."""
    run_dir = tmp_path / "a b'c$d"
    run_dir.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, sys\n"
        "json.dump({'argv': sys.argv[1:], 'x': os.environ.get('CEP_TEST_X')}, open(sys.argv[1], 'w'))\n"
    )
    out = run_dir / "seen.json"
    weird = ["$(touch /tmp/pwned)", "`id`", 'a"b', "line\nbreak", "*"]
    spec = LaunchSpec(
        job_id="j",
        kind="train",
        run_dir=run_dir,
        command=[sys.executable, str(probe), str(out), *weird],
        env={"CEP_TEST_X": "$HOME 'q' \"d\""},
    )
    script = tmp_path / "job.sbatch"
    script.write_text(sbatch_script(spec))
    subprocess.run(["bash", str(script)], check=True, timeout=60, cwd=tmp_path)
    seen = json.loads(out.read_text())
    assert seen == {"argv": [str(out), *weird], "x": "$HOME 'q' \"d\""}
    assert json.loads((run_dir / EXIT_FILE).read_text())["returncode"] == 0  # the runner wrapped it


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("run_dir", Path("/tmp/run%j"), "contains '%'"),
        ("run_dir", Path("/tmp/run\nx"), "line break"),
        ("env", {"BAD NAME": "1"}, "not a valid shell name"),
        ("extra_sbatch", ["--x\n#SBATCH --y"], "line break"),
    ],
)
def test_sbatch_script_refuses_what_it_cannot_write_safely(field, value, message):
    fields = dict(job_id="j", kind="train", run_dir=Path("/tmp/r"), command=["true"])
    fields[field] = value
    with pytest.raises(CepError, match=message):
        sbatch_script(LaunchSpec(**fields))


def test_missing_sbatch_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CepError) as caught:
        SlurmBackend()
    assert str(caught.value) == (
        "Slurm is not installed here: sbatch not found on PATH; install slurm-wlm or use --backend local"
    )


def test_missing_sbatch_through_the_job_manager_leaves_no_job(monkeypatch, tmp_path):
    from cep_core.jobs.manager import JobManager

    monkeypatch.setenv("PATH", "")
    manager = JobManager(home=tmp_path)
    with pytest.raises(CepError, match="Slurm is not installed here: sbatch not found on PATH"):
        manager.start_run(tmp_path, backend="slurm", command=["true"])
    assert manager.registry.list() == []


def test_state_map_covers_the_states_slurm_reports():
    expected = {
        "PENDING": (True, "queued"),
        "CONFIGURING": (True, "queued"),
        "REQUEUED": (True, "queued"),
        "RUNNING": (True, "running"),
        "COMPLETING": (True, "running"),
        "SUSPENDED": (True, "running"),
        "COMPLETED": (False, "succeeded"),
        "FAILED": (False, "crashed"),
        "CANCELLED": (False, "stopped"),
        "TIMEOUT": (False, "crashed"),
        "NODE_FAIL": (False, "crashed"),
        "PREEMPTED": (False, "crashed"),
        "OUT_OF_MEMORY": (False, "crashed"),
    }
    for state, mapped in expected.items():
        assert map_state(state) == mapped, state
    assert map_state("CANCELLED by 0") == (False, "stopped")  # as sacct writes it
    assert map_state("running") == (True, "running")
    assert map_state("SOMETHING_NEW") is None and map_state("") is None
    assert all(
        s in ("queued", "running", "succeeded", "failed", "stopped", "crashed")
        for _, s in SLURM_STATES.values()
    )


def test_parsers_read_real_slurm_output():
    line = (
        "JobId=7 JobName=demo job UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) "
        "ExitCode=137:0 RunTime=00:00:01 AllocNode:Sid=localhost:8893 CPUs/Task=1 "
        "StdOut=/tmp/q t/a'b/out.log Power="
    )
    record = parse_scontrol(line)
    assert record["JobName"] == "demo job" and record["JobState"] == "FAILED"
    assert record["StdOut"] == "/tmp/q t/a'b/out.log" and record["Power"] == ""
    assert record["AllocNode:Sid"] == "localhost:8893" and record["CPUs/Task"] == "1"
    multi = "JobId=7 JobName=x\n   JobState=COMPLETED Reason=None Dependency=(null)\n   ExitCode=0:0\n"
    assert parse_scontrol(multi)["JobState"] == "COMPLETED" and parse_scontrol(multi)["ExitCode"] == "0:0"
    assert parse_exit_code("137:0") == (137, None) and parse_exit_code("0:9") == (0, 9)
    assert parse_exit_code("n/a") == (None, None)
    assert parse_squeue("PENDING|Resources\n") == ("PENDING", "Resources")
    assert parse_squeue("") is None
    assert parse_sacct("CANCELLED by 0|0:15\n") == ("CANCELLED", "0:15")
    assert parse_job_id("123\n") == "123" and parse_job_id("123;cluster\n") == "123"
    assert parse_job_id("sbatch: error: Batch job submission failed") is None
    assert normalize_state("  TIMEOUT ") == "TIMEOUT"


_keys = st.from_regex(r"[A-Z][A-Za-z]{0,8}", fullmatch=True)
_values = st.from_regex(r"[A-Za-z0-9_:/.()\-]{0,12}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8))
def test_parse_scontrol_reads_back_what_scontrol_writes(fields):
    assert parse_scontrol(" ".join(f"{k}={v}" for k, v in fields.items())) == fields


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")), st.none(), st.integers()))
def test_parsers_never_raise(text):
    parse_scontrol(text)
    parse_squeue(text)
    parse_sacct(text)
    parse_exit_code(text)
    parse_job_id(text)
    normalize_state(text)
    result = map_state(text)
    assert result is None or result in SLURM_STATES.values()


FIRST_RUN = {"started": 1_001.0, "run": 0}
FIRST_EXIT = {"returncode": 0, "ended": 1_010.0, "run": 0}
PREEMPTED = (1_009.0, "stopped")  # what the first run wrote when Slurm requeued it
SECOND_RUN = {"started": 1_200.0, "run": 1}


@pytest.mark.parametrize(
    "runner, exit_record, ends, restarts, ended_run, end_status, note",
    [
        pytest.param(FIRST_RUN, FIRST_EXIT, [PREEMPTED], 0, 0, "stopped", "", id="one run: its own records"),
        pytest.param(SECOND_RUN, None, [PREEMPTED], 1, None, None, "", id="run 2 killed whole"),
        pytest.param(SECOND_RUN, None, [PREEMPTED], None, None, None, "", id="run 2 killed, Slurm silent"),
        pytest.param(
            SECOND_RUN,
            {"returncode": 0, "ended": 1_300.0, "run": 1},
            [PREEMPTED, (1_299.0, "completed")],
            1,
            1,
            "completed",
            "",
            id="run 2 finished",
        ),
        pytest.param(
            FIRST_RUN,
            FIRST_EXIT,
            [PREEMPTED],
            1,
            None,
            None,
            "run 2 of the job ended before its runner started",
            id="run 2 died before its runner (credential revoked)",
        ),
        pytest.param(
            None,
            {"returncode": 0, "ended": 900.0},
            [(899.0, "completed")],
            0,
            None,
            None,
            "",
            id="a previous submission's records",
        ),
    ],
)
def test_only_the_latest_runs_records_say_how_a_requeued_job_ended(
    tmp_path, runner, exit_record, ends, restarts, ended_run, end_status, note
):
    """A preempted run's exit record and `end{stopped}` are not how the run after it ended."""
    from cep_core.jobs.slurm.records import this_run

    run_dir = run_dir_for(tmp_path)
    if runner is not None:
        (run_dir / "runner.json").write_text(json.dumps(runner))
    if exit_record is not None:
        (run_dir / EXIT_FILE).write_text(json.dumps(exit_record))
    with (run_dir / "progress.jsonl").open("w") as out:
        for ts, status in ends:
            out.write(json.dumps({"event": "end", "status": status, "step": 2, "ts": ts}) + "\n")
    records = this_run(run_dir, since=1_000.0, restarts=restarts)
    assert (records.ended["run"] if records.ended else None) == ended_run
    assert (records.end_event or {}).get("status") == end_status
    assert records.note == note
