"""`cep jobs`: start, list, show, follow, stop, resume and supervise training and evaluation jobs."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cep_core.cli.gpu import gpu_count
from cep_core.cli.options import print_json, stderr_console, stdout_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="launch, follow, stop and auto-resume runs (local or Slurm)")
    jsub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    start = jsub.add_parser("start", help="create a run from CONFIG.toml and start it in the background")
    start.add_argument("config", metavar="CONFIG.toml", help="a training (or --kind eval) config")
    start.add_argument("--backend", default="local", help="local (default) or slurm")
    start.add_argument("--kind", default="train", help="train (default) or eval")
    start.add_argument("--name", help="run name (default: the config's file name)")
    start.add_argument(
        "--gpus",
        type=gpu_count,
        default=0,
        metavar="N",
        help="how many GPUs the job uses (0: none; more than 1 starts torchrun; Slurm: --gres=gpu:N)",
    )
    start.add_argument("--partition", help="Slurm partition")
    start.add_argument("--cpus", type=int, default=1, help="Slurm CPUs per task (default 1)")
    start.add_argument("--mem", help="Slurm memory, e.g. 64G")
    start.add_argument("--time", dest="time_limit", help="Slurm time limit, e.g. 04:00:00")
    start.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    start.set_defaults(func=_start)

    ls = jsub.add_parser("list", help="jobs, newest first, with their step and state")
    ls.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="the newest N jobs (default 50)")
    ls.set_defaults(func=_list)

    show = jsub.add_parser("show", help="one job: its fields, transitions and last progress")
    show.add_argument("id", help="a job id (cep jobs list)")
    show.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    show.set_defaults(func=_show)

    logs = jsub.add_parser("logs", help="print a job's stdout.log; -f follows it until the job ends")
    logs.add_argument("id", help="a job id (cep jobs list)")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines until the job ends"
    )
    logs.set_defaults(func=_logs)

    stop = jsub.add_parser("stop", help="SIGTERM (the job checkpoints), then SIGKILL after the grace period")
    stop.add_argument("id", help="a job id (cep jobs list)")
    stop.add_argument(
        "--grace",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time to checkpoint and exit after SIGTERM before SIGKILL (default 60)",
    )
    stop.set_defaults(func=_stop)

    resume = jsub.add_parser("resume", help="start a new attempt from the run's newest checkpoint")
    resume.add_argument("id", help="a job id (cep jobs list)")
    resume.set_defaults(func=_resume)

    sup = jsub.add_parser("supervise", help="watch jobs and auto-resume crashed runs (for systemd or tmux)")
    sup.add_argument(
        "--interval", type=float, default=10.0, metavar="SECONDS", help="time between passes (default 10)"
    )
    sup.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        metavar="N",
        help="relaunches of one run before giving up (default 3)",
    )
    sup.add_argument(
        "--backoff",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="wait before the first relaunch; doubles with each attempt",
    )
    sup.add_argument("--replay", metavar="FILE", help="judge GPU health from a recorded GPU session")
    sup.add_argument("--once", action="store_true", help="one pass, then exit")
    sup.set_defaults(func=_supervise)


def _manager():
    from cep_core.jobs.manager import JobManager

    return JobManager()


LIST_COLUMNS = ("id", "name", "kind", "backend", "state", "step", "loss", "tok/s", "ETA", "try")
NARROW_HIDDEN = ("kind", "backend", "tok/s")  # below WIDE_LIST columns: `cep jobs show ID` has them
WIDE_LIST = 100


def job_row(job: Any) -> dict[str, Any]:
    """A job with its progress figures from progress.jsonl (the console shows the same)."""
    from cep_core.runs.fold import run_progress

    row = job.to_dict()
    row.update(run_progress(job.run_dir, until=job.ended))
    return row


def _start(args: argparse.Namespace) -> int:
    manager = _manager()
    job = manager.start_config(
        args.config,
        kind=args.kind,
        backend=args.backend,
        name=args.name,
        gpus=args.gpus,
        partition=args.partition,
        cpus=args.cpus,
        mem=args.mem,
        time_limit=args.time_limit,
    )
    if args.json:
        print_json(job_row(job))
    else:
        stdout_console().print(
            f"started job [bold]{job.id}[/bold] ({job.kind}, {job.backend}) in {job.run_dir}\n"
            f"follow it: cep jobs logs {job.id} -f"
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    manager = _manager()
    manager.refresh_all()
    rows = [job_row(job) for job in manager.registry.list(limit=args.limit)]
    if args.json:
        print_json(rows)
        return 0
    from rich import box
    from rich.table import Table

    console = stdout_console()
    wide = console.width >= WIDE_LIST
    columns = [c for c in LIST_COLUMNS if wide or c not in NARROW_HIDDEN]
    table = Table(title="jobs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in columns:
        table.add_column(
            col,
            justify="right" if col in ("step", "loss", "tok/s", "ETA", "try") else "left",
            no_wrap=col != "name",  # the id is what every other command takes: never cut it
        )
    for row in rows:
        step = f"{row['step']}/{row['total_steps']}" if row.get("step") is not None else "-"
        cells = {
            "id": row["id"],
            "name": row["name"],
            "kind": row["kind"],
            "backend": row["backend"],
            "state": _state_text(row["state"]),
            "step": step,
            "loss": _fmt(row.get("loss"), "{:.4f}"),
            "tok/s": _fmt(row.get("tokens_per_s"), "{:,.0f}"),
            "ETA": _eta(row.get("eta_s")),
            "try": str(row["attempt"]),
        }
        table.add_row(*(cells[c] for c in columns))
    if not wide:
        table.caption = "kind, backend and tok/s: in a wider terminal, or cep jobs show ID"
    console.print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    manager = _manager()
    job = manager.refresh(manager.registry.get(args.id))
    row = job_row(job)
    row["transitions"] = manager.registry.transitions(job.id)
    if args.json:
        print_json(row)
        return 0
    console = stdout_console()
    for key in (
        "id",
        "name",
        "kind",
        "backend",
        "state",
        "reason",
        "attempt",
        "resumes",
        "resumed_by",
        "run_dir",
        "host",
        "pid",
        "slurm_id",
        "exit_code",
        "step",
        "total_steps",
        "loss",
        "tokens_per_s",
    ):
        if row.get(key) is not None:
            console.print(f"[bold]{key:>13}[/bold]  {row[key]}")
    console.print("[bold]  transitions[/bold]")
    for t in row["transitions"]:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t["ts"]))
        console.print(f"    {stamp}  {t['from_state'] or '-':>9} → {t['to_state']:<9} {t['reason']}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cep_core.jobs.follow import follow
    from cep_core.jobs.registry import ACTIVE_STATES

    manager = _manager()
    job = manager.registry.get(args.id)
    log = Path(job.run_dir) / "stdout.log"
    if not args.follow:
        if log.exists():
            import shutil

            with log.open("rb") as handle:  # streamed: a log of any size, in constant memory
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.flush()
        return 0

    def ended() -> bool:
        return manager.refresh(manager.registry.get(job.id)).state not in ACTIVE_STATES

    def note(text: str) -> None:
        sys.stdout.flush()
        stderr_console().print(f"[dim]--- {text} ---[/dim]")

    for chunk in follow(log, stop=ended, on_reset=note):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    final = manager.registry.get(job.id)
    stderr_console().print(f"job {final.id} {final.state}: {final.reason}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    job = _manager().stop(args.id, grace_s=args.grace)
    stdout_console().print(f"job {job.id} {job.state}: {job.reason}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    job = _manager().resume(args.id)
    stdout_console().print(f"resumed as job [bold]{job.id}[/bold] (attempt {job.attempt})")
    return 0


def _supervise(args: argparse.Namespace) -> int:
    from cep_core.jobs.policy import ResumePolicy, Supervisor, gpu_health_check

    console = stdout_console()
    supervisor = Supervisor(
        _manager(),
        ResumePolicy(max_attempts=args.max_attempts, backoff_s=args.backoff),
        health=gpu_health_check(args.replay),
    )

    def say(decision: Any) -> None:
        stamp = time.strftime("%H:%M:%S")
        extra = f" → {decision.new_job_id}" if decision.new_job_id else ""
        console.print(f"{stamp} {decision.job_id} {decision.action}{extra}: {decision.reason}")

    if args.once:
        for decision in supervisor.tick():
            say(decision)
        return 0
    console.print(f"supervising jobs every {args.interval:g}s (Ctrl-C to stop)")
    supervisor.run(args.interval, on_decision=say)
    return 0


def _state_text(state: str) -> str:
    colour = {
        "running": "cyan",
        "succeeded": "green",
        "failed": "red",
        "crashed": "red",
        "waiting": "yellow",
        "stopped": "magenta",
        "queued": "blue",
    }.get(state, "")
    return f"[{colour}]{state}[/{colour}]" if colour else state


def _fmt(value: Any, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) else "-"


def _eta(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )
