"""`cep traces`: browse the workflow traces, export them as training data, and prepare retraining.

Everything here goes through cep_core.tracer's query, export and retrain functions (the console uses the same
ones). Heavy or slow imports stay inside handlers so `cep --help` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from rich import box
from rich.text import Text

from cep_core.ages import parse_time
from cep_core.cli.gpu import gpu_count
from cep_core.cli.options import print_json, stderr_console, stdout_console
from cep_core.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "traces",
        help="browse captured LLM calls, export training data, prepare retraining",
        description="The workflow trace store (CEP_TRACES_DB, else CEP_HOME/traces.db).",
    )
    p.add_argument(
        "--traces", metavar="DB", help="trace database (default: $CEP_TRACES_DB, else CEP_HOME/traces.db)"
    )
    p.add_argument(
        "--threshold",
        type=int,
        default=None,
        help="new successful examples an agent needs before retraining (default 100)",
    )
    tsub = p.add_subparsers(dest="traces_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    s = tsub.add_parser("stats", help="per agent and model: calls, success rate, cost, time, progress")
    s.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    s.set_defaults(func=cmd_stats)

    ls = tsub.add_parser("list", help="newest traces first")
    _filters(ls)
    ls.add_argument("--before", metavar="ID", help="only traces older than this id (the next page)")
    ls.add_argument("--limit", type=int, default=20, metavar="N", help="traces per page (default 20)")
    ls.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    ls.set_defaults(func=cmd_list)

    se = tsub.add_parser("search", help="full-text search over prompts, responses and errors")
    se.add_argument("text", metavar="TEXT", nargs="+", help="words that must all appear (quotes not needed)")
    _filters(se)
    se.add_argument("--raw", action="store_true", help="TEXT is an FTS5 query (phrases, OR, NEAR, prefix*)")
    se.add_argument("--limit", type=int, default=20, metavar="N", help="traces per page (default 20)")
    se.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    se.set_defaults(func=cmd_search)

    sh = tsub.add_parser("show", help="one whole trace")
    sh.add_argument("id", metavar="ID", help="a trace id (or a unique prefix of 8+ characters)")
    sh.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    sh.set_defaults(func=cmd_show)

    ex = tsub.add_parser("export", help="successful calls to Hermes-format JSONL (train/holdout split)")
    ex.add_argument("--agent", metavar="A", help="TYPE/NAME, or a type or name that names one agent")
    ex.add_argument("--model", metavar="M", help="only calls to this model")
    ex.add_argument("--since", metavar="T", help="unix seconds, an ISO date/time, or an age such as 2h, 7d")
    ex.add_argument("--until", metavar="T", help="only calls before this time (same forms as --since)")
    ex.add_argument("--include-failed", action="store_true", help="export failed calls too")
    ex.add_argument("--holdout", type=float, default=0.1, help="share of examples held out (default 0.1)")
    ex.add_argument("--out", metavar="PATH", help="output folder (default CEP_HOME/datasets/traces-…)")
    ex.add_argument(
        "--no-watermark",
        action="store_true",
        help="do not restart the exported agents' counts of new examples (a look, not a hand-off)",
    )
    ex.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    ex.set_defaults(func=cmd_export)

    rt = tsub.add_parser(
        "retrain",
        help="export an agent's data, write its run config and launch the training job",
        description="Export the agent's successful traces, write its run config and launch the training job "
        "(a job, as `cep jobs start` would: see `cep jobs list`); --no-launch only prints the command.",
    )
    rt.add_argument("agent", metavar="AGENT", help="TYPE/NAME, or a type or name that names one agent")
    rt.add_argument("--model", default=None, help="base model for the run (default builtin:tiny)")
    rt.add_argument(
        "--template", metavar="TOML", help="config template with $placeholders (default: built in)"
    )
    rt.add_argument(
        "--out", metavar="DIR", help="where the data and run.toml go (default CEP_HOME/retrain/…)"
    )
    rt.add_argument("--force", action="store_true", help="even when the agent is below its threshold")
    rt.add_argument(
        "--no-launch",
        dest="launch",
        action="store_false",
        help="only export and write the config; print the command that starts it",
    )
    rt.add_argument("--backend", default="local", help="where the job runs: local (default) or slurm")
    rt.add_argument(
        "--gpus", type=gpu_count, default=0, metavar="N", help="how many GPUs the training job uses"
    )
    rt.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    rt.set_defaults(func=cmd_retrain)

    im = tsub.add_parser(
        "import",
        help="calls recorded elsewhere (JSONL, one call a line) into the store",
        description="Store calls from a JSONL file, one object a line with WorkflowTracer.capture_many's keys "
        "(messages or user_query/assistant_response; agent_type, agent_name, model_used; captured_at …). "
        "The whole file is checked first: a bad line stores nothing and is named with its line and field.",
    )
    im.add_argument("file", metavar="FILE", help="a .jsonl file")
    im.add_argument("--agent", metavar="TYPE/NAME", help="the agent of lines that do not name one")
    im.add_argument("--model", metavar="M", help="the model of lines that do not name one")
    im.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    im.set_defaults(func=cmd_import)

    tr = tsub.add_parser("triggers", help="recorded retrain triggers, newest first")
    tr.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    tr.set_defaults(func=cmd_triggers)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent", metavar="A", help="TYPE/NAME, or a type or name that names one agent")
    p.add_argument("--model", metavar="M", help="only calls to this model")
    p.add_argument("--failed", action="store_true", help="failed calls only")
    p.add_argument("--since", metavar="T", help="unix seconds, an ISO date/time, or an age such as 2h, 7d")


def _threshold(args: argparse.Namespace) -> int:
    from cep_core.tracer.thresholds import DEFAULT_THRESHOLD

    value = args.threshold if args.threshold is not None else DEFAULT_THRESHOLD
    if value < 1:
        raise InputError(f"--threshold: must be at least 1, got {value}")
    return value


def _store(args: argparse.Namespace, *, must_exist: bool = True):
    from cep_core.store.state import traces_db_path
    from cep_core.tracer.store import TraceStore

    path = Path(args.traces).expanduser() if args.traces else traces_db_path()
    if must_exist and not path.exists():
        raise InputError(
            "no trace store here yet (capture some calls with WorkflowTracer, or point --traces / "
            "CEP_TRACES_DB at one)",
            path=path,
        )
    import sqlite3

    try:
        return TraceStore(path)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise InputError(f"cannot open the trace store: {exc}", path=path) from None


def _where(args: argparse.Namespace, store: Any):
    """The flags as filter terms, read by the same rules as the console's `agent=… since=…` line."""
    from cep_core.tracer.filters import FilterTerms

    terms = FilterTerms(
        agent=args.agent or None,
        model=args.model,
        success=False if args.failed else None,
        since=args.since,
        flags=True,
    )
    return terms.to_filter(store)


def _fmt_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_num(value: float | None, digits: int = 3, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def cmd_stats(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cep_core.store.state import traces_db_path
    from cep_core.tracer.query import stats

    path = Path(args.traces).expanduser() if args.traces else traces_db_path()
    if not path.exists():
        # No store yet is a store of zero traces: said so, exit 0, and nothing created (a capture creates it).
        data = {"groups": [], "agents": [], "threshold": _threshold(args), "total": 0, "store": str(path)}
        if args.json:
            print_json(data)
        else:
            stdout_console().print(
                f"0 traces in {path} (no store yet: it appears with the first call captured through "
                "WorkflowTracer or `cep traces import`)",
                soft_wrap=True,
            )
        return 0
    store = _store(args)
    data = stats(store, threshold=_threshold(args)) | {"store": str(store.path)}
    if args.json:
        print_json(data)
        return 0
    console = stdout_console()
    progress = {a["agent"]: a for a in data["agents"]}
    table = Table(
        title=f"{data['total']} traces in {store.path}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("agent · model", overflow="fold", min_width=16)
    for col in ("calls", "ok", "cost $", "mean $", "mean s", "p95 s", "progress"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for g in data["groups"]:
        p = progress.get(g["agent"])
        to_go = "—" if p is None else f"{p['new_examples']}/{p['threshold']}"
        if p is not None and p["ready"]:
            to_go = f"[bold green]{to_go}[/]"
        table.add_row(
            f"{g['agent']} · {g['model']}",
            str(g["calls"]),
            f"{g['success_rate']:.0%}",
            f"{g['total_cost']:.4f}",
            _fmt_num(g["mean_cost"], 4),
            _fmt_num(g["mean_time"], 2),
            _fmt_num(g["p95_time"], 2),
            to_go,
        )
    console.print(table)
    ready = [a["agent"] for a in data["agents"] if a["ready"]]
    if ready:
        console.print("ready for retraining: " + ", ".join(ready) + "  →  cep traces retrain AGENT")
    return 0


def _when(ts: float, today: dt.date, wide: bool) -> str:
    """A trace's time in the list. Wide: the day and second (the year when it is not this one). Narrow, at
    most 11 characters: the time today, the day and minute this year, else the date."""
    stamp = dt.datetime.fromtimestamp(ts)
    this_year = stamp.year == today.year
    if wide:
        return stamp.strftime("%m-%d %H:%M:%S" if this_year else "%Y-%m-%d %H:%M")
    if stamp.date() == today:
        return stamp.strftime("%H:%M:%S")
    return stamp.strftime("%m-%d %H:%M" if this_year else "%Y-%m-%d")


def _page_table(page: Any, title: str, width: int):
    from rich.table import Table

    # Rich squeezes short columns to nothing when a long one overflows, so size the long ones to fit; on a
    # narrow terminal the agent goes into the text column and the time drops its seconds, or its date today.
    wide = width >= 110
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("id", no_wrap=True)
    table.add_column("time", no_wrap=True)
    table.add_column("ok", no_wrap=True)
    if wide:
        agent_width = min(32, (width - 60) // 3)
        table.add_column("s", justify="right", no_wrap=True)
        table.add_column("agent · model", overflow="ellipsis", no_wrap=True, max_width=agent_width)
        text_width = width - 62 - agent_width
    else:
        text_width = max(10, width - 49)
    today = dt.date.today()
    table.add_column(
        "query → response / error" if wide else "agent: query → response / error",
        overflow="ellipsis",
        no_wrap=True,
        max_width=text_width,
    )
    for r in page.rows:
        tail = r.response_preview if r.success else (r.error or r.response_preview)
        text = f"{r.query_preview} → {tail}".replace("\n", " ")
        ok = "✓" if r.success else "[red]✗[/]"
        when = _when(r.ts, today, wide)
        if wide:
            table.add_row(
                r.id, when, ok, _fmt_num(r.execution_time, 1), Text(f"{r.agent} · {r.model}"), Text(text)
            )
        else:
            table.add_row(r.id, when, ok, Text(f"{r.agent}: {text}"))
    return table


def _print_page(args: argparse.Namespace, page: Any, title: str) -> None:
    if args.json:
        print_json(page.to_dict())
        return
    console = stdout_console()
    if not page.rows:
        console.print("no traces match")
        return
    console.print(_page_table(page, title, console.width))
    if page.next_before_id:
        console.print(
            f"more: add --before {page.next_before_id}"
            if hasattr(args, "before")
            else f"showing the newest {len(page.rows)}; raise --limit for more"
        )


def cmd_list(args: argparse.Namespace) -> int:
    from cep_core.tracer.query import page

    store = _store(args)
    result = page(store, before_id=args.before, limit=max(1, args.limit), where=_where(args, store))
    _print_page(args, result, "traces, newest first")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from cep_core.tracer.query import search

    store = _store(args)
    text = " ".join(args.text)
    result = search(store, text, limit=max(1, args.limit), where=_where(args, store), raw=args.raw)
    _print_page(args, result, f"traces matching {text!r}, newest first")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.panel import Panel

    from cep_core.tracer.query import get

    store = _store(args)
    row = get(store, args.id)
    if row is None:
        raise InputError(f"no trace with id {args.id!r}", path=store.path)
    if args.json:
        print_json(row.to_dict())
        return 0
    console = stdout_console()
    status = "[green]success[/]" if row.success else "[red]failed[/]"
    console.print(f"[bold]{row.id}[/]  {_fmt_time(row.ts)}  {status}")
    console.print(
        f"{row.agent} · {row.model}   cost {_fmt_num(row.cost, 4)}   "
        f"time {_fmt_num(row.execution_time, 2, ' s')}   redactions {row.redactions}",
        markup=False,
    )
    if row.error:
        console.print(f"[red]error:[/] {row.error}", markup=True, highlight=False)
    if row.tools:
        console.print(
            "tools: " + ", ".join(str((t.get("function") or t).get("name", "?")) for t in row.tools)
        )
    from cep_core.tracer.capture import assistant_text

    for m in row.messages:
        body = assistant_text(m) if m["role"] == "assistant" else m.get("content", "")
        title = m["role"] + (f" ({m['name']})" if m.get("name") else "")
        console.print(Panel(body or "[dim](empty)[/]", title=title, title_align="left"), markup=False)
    if row.metadata:
        console.print("metadata:", row.metadata)
    return 0


def _progress_bar(what: str = "exporting"):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
    )


def cmd_export(args: argparse.Namespace) -> int:
    from cep_core.tracer.export import default_export_dir, export_dataset
    from cep_core.tracer.thresholds import resolve_agent

    store = _store(args)
    key = resolve_agent(store, args.agent) if args.agent else None
    out = Path(args.out).expanduser() if args.out else default_export_dir(key)
    with _progress_bar() as bar:
        task = bar.add_task("export", total=None)
        result = export_dataset(
            store,
            out,
            agent=key,
            model=args.model,
            since=parse_time(args.since, "--since"),
            until=parse_time(args.until, "--until"),
            success=None if args.include_failed else True,
            holdout_fraction=args.holdout,
            record=not args.no_watermark,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if args.json:
        print_json(result.to_dict())
        return 0
    _print_export(result)
    return 0


def _print_export(result: Any) -> None:
    console = stdout_console()
    console.print(f"wrote {result.train} training and {result.holdout} holdout example(s)")
    console.print(
        f"  {result.train_path}\n  {result.holdout_path}\n  {result.manifest_path}",
        soft_wrap=True,
        markup=False,
    )
    if result.duplicates:
        console.print(f"  {result.duplicates} duplicate(s) dropped")
    for reason, n in sorted(result.skipped.items()):
        console.print(f"  skipped {n}: {reason}")


def cmd_import(args: argparse.Namespace) -> int:
    from cep_core.store.state import traces_db_path
    from cep_core.tracer import WorkflowTracer
    from cep_core.tracer.importer import check_file, import_file
    from cep_core.tracer.thresholds import parse_agent

    path = Path(args.file).expanduser()
    defaults: dict[str, str] = {}
    if args.agent:
        try:
            key = parse_agent(args.agent)
        except InputError:
            raise InputError(f"--agent: give TYPE/NAME, such as travel/planner, not {args.agent!r}") from None
        defaults.update(agent_type=key.agent_type, agent_name=key.agent_name)
    if args.model:
        defaults["model_used"] = args.model
    with stderr_console().status(f"checking {path}"):
        check = check_file(path, defaults)
    check.raise_if_bad()
    if not check.calls:
        raise InputError("no calls in the file (it is empty)", path=path)
    db = Path(args.traces).expanduser() if args.traces else traces_db_path()
    tracer = WorkflowTracer(db, strict=True, threshold=_threshold(args))
    try:
        with _progress_bar("importing") as bar:
            task = bar.add_task("import", total=check.calls)
            per_agent = import_file(
                path, tracer.capture_many, defaults, lambda done: bar.update(task, completed=done)
            )
    finally:
        tracer.close()
    summary = {
        "imported": sum(per_agent.values()),
        "store": str(db),
        "agents": dict(per_agent.most_common()),
        "kept_in_metadata": dict(check.extra_keys.most_common()),
    }
    if args.json:
        print_json(summary)
        return 0
    console = stdout_console()
    console.print(f"imported {summary['imported']} call(s) into {db}", soft_wrap=True, markup=False)
    for agent, n in per_agent.most_common():
        console.print(f"  {agent}: {n}", markup=False)
    if check.extra_keys:
        kept = ", ".join(f"{k} ({n})" for k, n in check.extra_keys.most_common())
        console.print(f"  other keys kept under metadata: {kept}", markup=False)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from cep_core.tracer.retrain import DEFAULT_MODEL, prepare_retrain
    from cep_core.tracer.thresholds import resolve_agent

    store = _store(args)
    key = resolve_agent(store, args.agent)
    launch = None
    if args.launch:
        from cep_core.jobs.manager import JobManager

        def launch(config_path):  # noqa: ANN001 - the tracer's Launcher signature
            job = JobManager().start_config(
                config_path,
                kind="train",
                backend=args.backend,
                gpus=args.gpus,
                name=f"retrain-{key.agent_type}-{key.agent_name}",
            )
            return job.id

    with _progress_bar() as bar:
        task = bar.add_task("export", total=None)
        result = prepare_retrain(
            store,
            key,
            out_dir=args.out,
            model=args.model or DEFAULT_MODEL,
            threshold=_threshold(args),
            force=args.force,
            template_path=args.template,
            launch=launch,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if args.json:
        print_json(result.to_dict())
        return 0
    _print_export(result.export)
    console = stdout_console()
    console.print(f"wrote the run config {result.config_path}", soft_wrap=True, markup=False)
    if result.status == "launched":
        console.print(
            f"recorded trigger {result.trigger_id} for {result.agent}; launched job {result.launch_ref}",
            soft_wrap=True,
            markup=False,
        )
        console.print(f"  follow it: cep jobs logs {result.launch_ref} -f", markup=False, soft_wrap=True)
        return 0
    if result.status == "launch_failed":
        console.print(
            f"recorded trigger {result.trigger_id}; the launch failed — start it by hand:", soft_wrap=True
        )
    else:
        console.print(
            f"recorded trigger {result.trigger_id} for {result.agent}; start the run with:", soft_wrap=True
        )
    console.print(f"  {result.command}", markup=False, soft_wrap=True)
    return 0 if result.status != "launch_failed" else 1


def cmd_triggers(args: argparse.Namespace) -> int:

    from cep_core.tracer.retrain import triggers

    store = _store(args)
    rows = triggers(store)
    if args.json:
        print_json(rows)
        return 0
    console = stdout_console()
    if not rows:
        console.print("no retrain triggers recorded")
        return 0
    console.print("retrain triggers, newest first")
    for r in rows:
        console.print(
            f"{r['id']}  {_fmt_time(r['ts'])}  {r['agent_type']}/{r['agent_name']}  "
            f"{r['examples']} examples  {r['status']}" + (f" ({r['launch_ref']})" if r["launch_ref"] else ""),
            markup=False,
            soft_wrap=True,
        )
        console.print(f"  {r['config']}", markup=False, soft_wrap=True)
    return 0
