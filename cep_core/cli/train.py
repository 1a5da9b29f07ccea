"""`cep train CONFIG.toml [--check]`: pre-flight, or create a run directory and train in the foreground.

The training itself runs as the job subprocess (`python -m cep_core.training RUN_DIR`), exactly as the jobs
layer and the console start it; this command follows its progress.jsonl (new lines only) with a progress
bar. Passing a run directory instead of a config resumes that run. Nothing heavy is imported here at module
level.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from cep_core.cli.options import print_json, stderr_console, stdout_console


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a LoRA adapter (pre-flight, run directory, progress)",
        description="Train a LoRA adapter from a TOML config, in the foreground. With a run directory instead "
        "of a config, resume that run from its newest valid checkpoint.",
    )
    parser.add_argument(
        "target",
        metavar="CONFIG.toml|RUN_DIR",
        help="a training config, or an existing run directory (or run id) to resume",
    )
    parser.add_argument("--check", action="store_true", help="only run the pre-flight checks and exit")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from cep_core.errors import InputError
    from cep_core.runs import RunPaths
    from cep_core.store.state import runs_dir

    target = Path(args.target).expanduser()
    if not target.exists() and (runs_dir() / args.target).is_dir():
        target = runs_dir() / args.target
    if target.is_dir():
        paths = RunPaths(target.resolve())
        if not paths.run_toml.is_file():
            raise InputError("not a run directory (no run.toml)", path=target)
        if args.check:
            return _check(paths.run_toml, args.json)
        return _follow(paths, args.json)
    if args.check:
        return _check(target, args.json)
    return _start(target, args.json)


def _check(config_path: Path, as_json: bool) -> int:
    from cep_core.checks import exit_code
    from cep_core.training.preflight import run_preflight

    console = stderr_console()
    with console.status("pre-flight: config, model, data, GPU, disk…"):
        result = run_preflight(config_path)
    if as_json:
        print_json({"status": str(result.status), "checks": [c.to_dict() for c in result.checks]})
    else:
        _print_checks([c.to_dict() for c in result.checks])
    return exit_code(result.status)


def _start(config_path: Path, as_json: bool) -> int:
    from cep_core.runs import create_run_dir
    from cep_core.store.state import ensure_home
    from cep_core.training.config import load_config, write_run_toml

    config = load_config(config_path)
    ensure_home()
    paths = create_run_dir(config.name)
    write_run_toml(config, paths.run_toml)
    if not as_json:
        stdout_console().print(f"run [bold]{paths.root.name}[/] in {paths.root}")
    return _follow(paths, as_json)


def _print_checks(checks: list[dict[str, Any]]) -> None:
    from rich.table import Table

    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    table = Table(title="pre-flight", show_lines=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for c in checks:
        status = str(c.get("status"))
        table.add_row(
            str(c.get("name")), f"[{colour.get(status, 'white')}]{status}[/]", str(c.get("detail", ""))
        )
    stdout_console().print(table)


def _follow(paths: Any, as_json: bool) -> int:
    """Start the job subprocess and follow its events until it exits; signals are passed on to it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cep_core.jobs.manager import JobManager, job_module_command
    from cep_core.runs import ProgressTail

    events = ProgressTail(paths.progress, from_end=True)  # what an earlier attempt wrote is not news
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Registered as a job (backend foreground), so `cep jobs list` and the console's Runs screen show it.
    manager = JobManager()
    attempt, resumes = manager.foreground_attempt(paths.root)
    command = job_module_command("train", paths.root)
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        job = manager.register_foreground(
            paths.root, proc.pid, command, name=_run_name(paths), attempt=attempt, resumes=resumes
        )
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if not as_json:
        stdout_console().print(
            f"job [bold]{job.id}[/] (foreground; cep jobs list, the console's Runs screen)"
        )

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    console = stdout_console()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[tps]} tok/s"),
        TimeRemainingColumn(),
        console=console,
        disable=as_json,
        transient=False,
    )
    task = progress.add_task("preparing", total=None, loss="-", tps="-")
    final: dict[str, Any] = {}
    try:
        with progress:
            while True:
                done = proc.poll() is not None
                for event in events.read_new():  # only lines completed since the last poll
                    _show(event, progress, task, console, as_json)
                    if event["event"] in ("end", "error"):
                        final = event
                if done:
                    break
                time.sleep(0.3)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        proc.wait()
        job = manager.finish_foreground(job.id, proc.returncode)
    code = proc.returncode
    if as_json:
        print_json(
            {
                "run_dir": str(paths.root),
                "exit_code": code,
                "result": final,
                "job_id": job.id,
                "state": job.state,
            }
        )
    elif final.get("event") == "end":
        console.print(f"{final.get('status')} at step {final.get('step')}; run directory {paths.root}")
    elif final.get("event") == "error":
        stderr_console().print(
            f"[red]error ({final.get('kind')})[/]: {final.get('message')}\nlog: {paths.stdout_log}"
        )
    else:
        stderr_console().print(
            f"[red]the job exited with code {code} without an end event[/]; log: {paths.stdout_log}"
        )
    return code if code is not None else 1


def _show(event: dict[str, Any], progress: Any, task: Any, console: Any, as_json: bool) -> None:
    kind = event["event"]
    if as_json:
        return
    if kind == "preflight":
        _print_checks(event.get("checks") or [])
    elif kind == "data":
        skipped = ", ".join(f"{k} {v}" for k, v in (event.get("skipped") or {}).items()) or "none"
        console.print(
            f"data: {event.get('rows')} rows, {event.get('train_rows')} train, "
            f"{event.get('holdout_rows')} holdout; skipped: {skipped}"
        )
    elif kind == "start":
        resumed = event.get("resumed_from")
        progress.update(task, description="training", total=event.get("total_steps"), completed=resumed or 0)
        if resumed:
            console.print(f"resumed from step {resumed}")
    elif kind == "step":
        loss = event.get("loss")
        progress.update(
            task,
            completed=event.get("step"),
            total=event.get("total_steps"),
            loss=f"{loss:.3f}" if isinstance(loss, float) else "-",
            tps=f"{event.get('tokens_per_s') or 0:.0f}",
        )
    elif kind == "checkpoint":
        console.print(f"checkpoint at step {event.get('step')}")


def _run_name(paths: Any) -> str:
    """The config's name (run.toml), else the run directory's."""
    from cep_core.store.configfile import read_leniently

    name = read_leniently(paths.run_toml).get("name")
    return name if isinstance(name, str) and name else paths.root.name
