"""`cep gpu`: GPU status and health, a live view, Xid reports from kernel logs, and the launch pre-flight.

Exit codes of status and check: 0 ok, 1 warn, 2 fail. Every subcommand takes `--replay FILE` to play a
recorded host instead of NVML (see cep_core/gpu/replay.py for the format).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cep_core.cli.options import print_json, stderr_console, stdout_console

_STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gpu",
        help="GPU status, health, Xid errors and launch pre-flight",
        description="GPU status and health through NVML, Xid detection from kernel logs.",
    )
    gsub = p.add_subparsers(dest="gpu_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--replay", metavar="FILE", help="play a recorded host (JSON snapshots) instead of NVML"
    )
    common.add_argument(
        "--snapshot",
        type=int,
        default=None,
        metavar="N",
        help="with --replay: the snapshot to show first (negative counts from the end)",
    )
    settings = argparse.ArgumentParser(add_help=False)
    settings.add_argument(
        "--xid-window",
        type=float,
        default=None,
        metavar="S",
        help="seconds an Xid counts against health (default 86400)",
    )
    settings.add_argument(
        "--temp-margin",
        type=float,
        default=None,
        metavar="C",
        help="warn within this many degrees of the slowdown threshold (default 5)",
    )
    settings.add_argument("--no-power-warn", action="store_true", help="do not warn on power-cap throttling")
    settings.add_argument(
        "--no-kernel-log",
        action="store_true",
        help="do not read the kernel log (only events stored in cep.db count)",
    )

    s = gsub.add_parser(
        "status",
        parents=[common, settings],
        help="one sample and the health verdict",
        description="One sample of every GPU and the health verdict. Exit 0 ok, 1 warn, 2 fail.",
    )
    s.add_argument("--json", action="store_true", help="machine output: the sample, findings and events")
    s.set_defaults(func=cmd_status)

    w = gsub.add_parser("watch", parents=[common, settings], help="a live text view (plain terminals)")
    w.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between samples")
    w.add_argument("--count", type=int, default=0, metavar="N", help="stop after N samples (0: until Ctrl-C)")
    w.set_defaults(func=cmd_watch)

    x = gsub.add_parser(
        "xid",
        parents=[common],
        help="Xid events from a saved kernel log or the live sources",
        description="Parse a saved kernel log (dmesg, dmesg -T, kern.log, journalctl, "
        "/dev/kmsg records) into Xid events; without --file, read the live sources.",
    )
    x.add_argument("--file", metavar="PATH", help="a saved kernel log ('-' for stdin)")
    x.add_argument("--json", action="store_true", help="one JSON object per event per line")
    x.add_argument("--follow", action="store_true", help="keep watching the live sources (Ctrl-C to stop)")
    x.set_defaults(func=cmd_xid)

    c = gsub.add_parser(
        "check",
        parents=[common, settings],
        help="the pre-flight verdict before a launch",
        description="Health plus free memory against what the job needs. Exit 0/1/2.",
    )
    c.add_argument("--need-gb", type=float, default=None, metavar="GB", help="free GPU memory needed (GiB)")
    which = c.add_mutually_exclusive_group()
    which.add_argument(
        "--gpus",
        type=gpu_count,
        default=None,
        metavar="N",
        help="how many GPUs the job will use: GPUs 0..N-1, as `cep jobs start --gpus N` runs it (default all)",
    )
    which.add_argument(
        "--devices", default=None, metavar="0,1,...", help="the GPU indices the job will use, by number"
    )
    c.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    c.set_defaults(func=cmd_check)


# --- helpers ------------------------------------------------------------------------------------------------


def gpu_count(text: str) -> int:
    """`--gpus N` is a count everywhere in `cep` (jobs start, traces retrain, gpu check); indices are --devices."""
    try:
        n = int(text)
    except ValueError:
        hint = (
            " (it is a count; to pick GPUs by index: CUDA_VISIBLE_DEVICES=0,1 for a job, "
            "--devices 0,1 for cep gpu check)"
            if "," in text
            else ""
        )
        raise argparse.ArgumentTypeError(f"--gpus takes a number of GPUs, got {text!r}{hint}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"--gpus cannot be negative, got {n}")
    return n


def _source(args: argparse.Namespace, loop: bool = False, default_start: int | None = None) -> Any:
    if not getattr(args, "replay", None):
        return None
    from cep_core.gpu.replay import ReplaySource

    start = args.snapshot if args.snapshot is not None else default_start
    return ReplaySource(args.replay, loop=loop, start=start)


def _settings(args: argparse.Namespace) -> Any:
    from cep_core.gpu.health import HealthSettings

    kw: dict[str, Any] = {}
    if getattr(args, "xid_window", None) is not None:
        kw["xid_window_s"] = args.xid_window
    if getattr(args, "temp_margin", None) is not None:
        kw["temp_margin_c"] = args.temp_margin
    if getattr(args, "no_power_warn", False):
        kw["warn_on_power_throttle"] = False
    return HealthSettings(**kw)


def _fmt(v: Any, unit: str = "", scale: float = 1.0, digits: int = 0) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "n/a"
    return f"{v / scale:.{digits}f}{unit}"


def _short(name: Any) -> str:
    return "?" if name == "n/a" else str(name).removeprefix("NVIDIA ")[:18]


def _gpu_table(report: Any) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 1),
        header_style="bold",
        collapse_padding=True,
    )
    for col in ("#", "name", "temp", "util", "mem GiB", "power W", "SM MHz", "P", "procs", "health"):
        t.add_column(col, no_wrap=True, justify="left" if col in ("name", "health") else "right")
    by_index = {g.index: g for g in report.sample.gpus}
    for gh in report.gpus:
        g = by_index[gh.index]
        style = _STATUS_STYLE[str(gh.status)]
        if g.error:
            t.add_row(str(g.index), _short(g.name), "", "", "", "", "", "", "", f"[{style}]{gh.status}[/]")
            continue
        t.add_row(
            str(g.index),
            _short(g.name),
            f"{_fmt(g.temperature)}/{_fmt(g.temp_slowdown, 'C')}",
            _fmt(g.util_gpu, "%"),
            f"{_fmt(g.mem_used, '', 2**30, 1)}/{_fmt(g.mem_total, '', 2**30, 0)}",
            f"{_fmt(g.power_w)}/{_fmt(g.power_limit_w)}",
            _fmt(g.sm_clock),
            f"P{_fmt(g.pstate)}" if isinstance(g.pstate, int) else "n/a",
            str(len(g.processes)),
            f"[{style}]{gh.status}[/]",
        )
    return t


def _print_report(report: Any, console: Any) -> None:
    sample = report.sample
    status = str(report.status)
    style = _STATUS_STYLE[status]
    if sample.init_error is None:
        console.print(
            f"driver {sample.driver_version} · NVML {sample.nvml_version} · {len(sample.gpus)} GPU(s)"
            f" · source {sample.source}"
        )
        if sample.gpus:
            console.print(_gpu_table(report))
    console.print(f"GPU health: [{style}]{status.upper()}[/]")
    for reason in report.reasons:
        console.print(f"  - {reason}")
    if status != "ok":
        console.print(f"Fix: {report.remediation}")


def _report(args: argparse.Namespace, source: Any) -> Any:
    from cep_core.gpu.health import evaluate
    from cep_core.gpu.sample import sample_once
    from cep_core.gpu.watch import gather_events

    settings = _settings(args)
    sample = sample_once(source)
    events = gather_events(
        source=source, read_kernel_log=not args.no_kernel_log, window_s=settings.xid_window_s
    )
    return evaluate(sample, events, settings)


# --- subcommands --------------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    report = _report(args, _source(args, default_start=-1))
    if args.json:
        print_json(report.to_dict())
    else:
        _print_report(report, stdout_console())
    return report.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    from cep_core.checks import exit_code, worst
    from cep_core.gpu.preflight import checks_from_report

    need = int(args.need_gb * 2**30) if args.need_gb is not None else None
    gpus = list(range(args.gpus)) if args.gpus else None
    if args.devices:
        try:
            gpus = [int(x) for x in args.devices.split(",") if x.strip()]
        except ValueError:
            from cep_core.errors import InputError

            raise InputError(
                f"--devices takes comma-separated GPU indices, got {args.devices!r}", field="--devices"
            ) from None
    report = _report(args, _source(args, default_start=-1))
    checks = checks_from_report(report, need, gpus)
    verdict = worst(checks)
    if args.json:
        print_json({"status": str(verdict), "checks": [c.to_dict() for c in checks]})
    else:
        console = stdout_console()
        for c in checks:
            console.print(f"[{_STATUS_STYLE[str(c.status)]}]{str(c.status):4}[/] {c.name}: {c.detail}")
        console.print(f"pre-flight: [{_STATUS_STYLE[str(verdict)]}]{str(verdict).upper()}[/]")
    return exit_code(verdict)


def _event_row(ev: Any) -> dict[str, Any]:
    from cep_core.gpu.xid_catalog import lookup

    info = lookup(ev.xid)
    d = ev.to_dict()
    d["name"] = info.name
    d["action"] = info.action_text
    return d


def _print_events(events: list[Any], as_json: bool) -> None:
    if as_json:
        for ev in events:
            sys.stdout.write(json.dumps(_event_row(ev), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    console = stdout_console()
    if not events:
        console.print("no Xid events")
        return
    from cep_core.gpu.xid_catalog import lookup

    for ev in events:
        info = lookup(ev.xid)
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ev.ts))
            if ev.ts
            else (f"+{ev.uptime:.0f}s after boot" if ev.uptime is not None else "time unknown")
        )
        what = f"Xid {ev.xid}" if ev.xid is not None else "fallen off the bus"
        proc = f" pid {ev.pid}" + (f" ({ev.process})" if ev.process else "") if ev.pid else ""
        style = _STATUS_STYLE.get({"fatal": "fail", "warn": "warn"}.get(ev.severity, "ok"), "")
        console.print(f"[{style}]{ev.severity:5}[/] {when}  {what} on {ev.pci or '?'}{proc}: {info.name}")
        console.print(f"       {ev.message}", markup=False)
        console.print(f"       action: {info.action_text}", markup=False)


def cmd_xid(args: argparse.Namespace) -> int:
    from cep_core.gpu.kernel_log import parse_kernel_log

    if args.file:
        from cep_core.gpu.logfiles import log_text, read_log_file

        # Plain, .gz/.xz/.bz2 rotations (on stdin too), or a journald file.
        stdin = args.file == "-"
        text = log_text(sys.stdin.buffer.read(), "<stdin>") if stdin else read_log_file(args.file)
        _print_events(parse_kernel_log(text), args.json)
        return 0
    source = _source(args, default_start=-1)
    if source is not None:
        from cep_core.gpu.watch import gather_events

        _print_events(gather_events(source=source), args.json)
        return 0
    from cep_core.gpu.sources import NoReadableSource, read_kernel_history
    from cep_core.gpu.watch import XidWatcher

    if args.follow:
        watcher = XidWatcher(from_start=False)
        watcher.start()
        _print_attempts(watcher.attempts)
        try:
            while True:
                ev = watcher.get(timeout=1.0)
                if ev is not None:
                    _print_events([ev], args.json)
        finally:
            watcher.stop()
    events, attempts = read_kernel_history()
    if not any(a.ok for a in attempts):
        raise NoReadableSource(attempts)
    _print_attempts(attempts)
    _print_events(events, args.json)
    return 0


def _print_attempts(attempts: list[Any]) -> None:
    err = stderr_console()
    for a in attempts:
        err.print(
            f"{'reading' if a.ok else 'skipped'} {a.name}{'' if a.ok else ': ' + a.reason}", markup=False
        )


def cmd_watch(args: argparse.Namespace) -> int:
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from cep_core.gpu.health import evaluate
    from cep_core.gpu.sample import Sampler
    from cep_core.gpu.sources import NoReadableSource
    from cep_core.gpu.watch import XidWatcher

    settings = _settings(args)
    args.interval = max(args.interval, 0.05)
    source = _source(args, loop=args.count == 0)
    if source is not None:
        watcher = XidWatcher(readers=[], nvml_source=source, record=False)
    else:
        watcher = XidWatcher(readers=None if not args.no_kernel_log else [], from_start=False)
    try:
        watcher.start()
        notes = [
            f"{'following' if a.ok else 'not readable'}: {a.name}{'' if a.ok else ' (' + a.reason + ')'}"
            for a in watcher.attempts
        ]
    except NoReadableSource as exc:
        watcher = None
        notes = [f"Xid watching off: {exc}"]
    events: list[Any] = []
    console = stdout_console()
    sampler = Sampler(source)
    n = 0

    def frame() -> tuple[Any, Any]:
        if watcher is not None:
            events.extend(watcher.drain())
        report = evaluate(sampler.sample(), events, settings)
        lines = [
            Text(f"cep gpu watch · every {args.interval:g}s · {time.strftime('%H:%M:%S')} · Ctrl-C to stop")
        ]
        if report.sample.gpus:
            lines.append(_gpu_table(report))
        style = _STATUS_STYLE[str(report.status)]
        lines.append(Text.from_markup(f"GPU health: [{style}]{str(report.status).upper()}[/]"))
        lines += [Text(f"  - {r}") for r in report.reasons]
        if str(report.status) != "ok":
            lines.append(Text(f"Fix: {report.remediation}"))
        lines += [Text(note, style="dim") for note in notes]
        if watcher is not None and watcher.error:
            lines.append(Text(f"Xid watching: {watcher.error}", style="yellow"))
        return Group(*lines), report

    try:
        if console.is_terminal:
            with Live(console=console, auto_refresh=False) as live:
                while True:
                    view, report = frame()
                    live.update(view, refresh=True)
                    n += 1
                    if args.count and n >= args.count:
                        break
                    time.sleep(args.interval)
        else:  # a pipe or a log file: one block per sample
            while True:
                view, report = frame()
                console.print(view)
                n += 1
                if args.count and n >= args.count:
                    break
                time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        if watcher is not None:
            watcher.stop()
        sampler.close()
    return report.exit_code
