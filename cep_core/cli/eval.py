"""`cep eval`: run an evaluation, compare evaluations against the baselines, show the worst examples.

    cep eval CONFIG.toml [--detach] [--name NAME] [--json]
    cep eval compare [ID ...] [--json]
    cep eval show ID [--track toolcall|structured] [-n N] [--json]

Heavy imports (the job, torch through the hf backend) happen inside the handlers only.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table
from rich.text import Text

from cep_core.cli.options import add_home_option, print_json, stderr_console, stdout_console, use_home
from cep_core.errors import InputError
from cep_core.scoring import baselines

USAGE = """\
  cep eval CONFIG.toml [--detach] [--name NAME] [--json]   run an evaluation (foreground, or as a job)
  cep eval compare [ID ...] [--json]                        evaluations side by side with both baselines
  cep eval show ID [--track TRACK] [-n N] [--json]          the worst examples of an evaluation
  cep eval ablation CONFIG.toml [--detach] [--json]         base / base+CEP / LoRA+CEP on the same examples
  cep eval ablation show [ID] [--json]                      an ablation's table (default: the newest)"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on both tracks; compare evaluations against the baselines",
        description="Evaluate any candidate (a base model, a trained adapter, an API model, a predictions file) "
        "on the toolcall and structured tracks.\n\n" + USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="cep eval {CONFIG.toml | compare | show} ...",
    )
    p.add_argument(
        "target",
        metavar="CONFIG.toml|compare|show|ablation",
        help="an eval config to run, or compare / show / ablation (each has its own --help)",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.target == "ablation":
        return ablation(args.rest)
    parser = {"compare": _compare_parser, "show": _show_parser}.get(args.target, _run_parser)()
    add_home_option(parser)  # `cep eval compare --home DIR`, as after any other subcommand
    ns = parser.parse_args(args.rest)
    if getattr(ns, "home", None):
        use_home(ns.home)
    if args.target == "compare":
        return compare(ns)
    if args.target == "show":
        return show(ns)
    ns.config = args.target
    return run_config(ns)


# ---------------------------------------------------------------- run


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cep eval CONFIG.toml", description="Run an evaluation.")
    p.add_argument("--detach", action="store_true", help="start it as a background job (cep jobs follows it)")
    p.add_argument("--backend", dest="job_backend", default="local", help="jobs backend with --detach")
    p.add_argument("--name", help="the evaluation's name (default: the config's name)")
    p.add_argument("--json", action="store_true", help="print results.json to stdout")
    return p


def run_config(ns: argparse.Namespace, ablation: bool = False) -> int:
    from cep_core.evaluation.config import load_eval_config
    from cep_core.evaluation.launch import prepare_run, start_evaluation

    config = load_eval_config(ns.config)
    if ns.name:
        config.name = ns.name
    if ablation and not config.ablation:
        from cep_core.evaluation.ablation import check_ablation

        check_ablation(config, ns.config)
        config.ablation = True
    if ns.detach:  # the path the console's evaluation form takes too
        job = start_evaluation(config, backend=ns.job_backend)
        if ns.json:
            print_json({"job_id": job.id, "run_dir": job.run_dir, "state": job.state})
        else:
            stdout_console().print(
                f"started evaluation job {job.id} in {job.run_dir} (cep jobs show {job.id})"
            )
        return 0
    return _foreground(prepare_run(config), ns.json, ablation=config.ablation)


def _foreground(run_dir: Any, as_json: bool, ablation: bool = False) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cep_core.cli.options import quiet_library_progress
    from cep_core.evaluation.job import run_evaluation
    from cep_core.scoring.report import categories_table, errors_table, results_table

    quiet_library_progress()  # the job's own bar, not transformers' "Loading weights" between its lines
    err = stderr_console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task("loading", total=None, rate="")
        started: dict[str, Any] = {}

        def hook(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == "start":
                started.update(event)
                bar.update(task, description="generating", total=event["total_steps"])
            elif kind == "step":
                rate = event.get("examples_per_s")
                bar.update(
                    task, completed=event["step"], rate=f"{rate:.2f} ex/s" if isinstance(rate, float) else ""
                )
            elif kind == "eval":
                variant = (event.get("metrics") or {}).get("variant")
                bar.update(task, description=f"scored {variant}" if variant else "scored")

        code, results = run_evaluation(run_dir, hook=hook)
    if results is None:
        err.print(f"[red]evaluation did not complete (exit {code}); see {run_dir}/progress.jsonl")
        return code
    if ablation:
        return _print_ablation(started.get("ablation"), as_json) or code
    if as_json:
        print_json(results)
        return code
    out = stdout_console()
    for track, figures in results["tracks"].items():
        out.print(results_table(figures, title=f"{track} track — {figures['n']} examples"))
        for table in (errors_table(figures), categories_table(figures)):
            if table is not None:
                out.print(table)
    if results["generation_errors"]["count"]:
        out.print(
            f"[yellow]{results['generation_errors']['count']} generation error(s), e.g. "
            f"{results['generation_errors']['examples'][0]['error']}"
        )
    out.print(f"evaluation {results['eval_id']}: files in {_eval_dir(results)}")
    return code


def _eval_dir(results: dict[str, Any]) -> str:
    from cep_core.evaluation.store import get_evaluation

    try:
        return get_evaluation(results["eval_id"]).eval_dir
    except InputError:
        return "?"


# ---------------------------------------------------------------- ablation


def ablation(rest: list[str]) -> int:
    if rest and rest[0] == "show":
        p = argparse.ArgumentParser(prog="cep eval ablation show", description="An ablation's table.")
        p.add_argument("id", nargs="?", help="ablation id, unique prefix or name (default: the newest)")
        p.add_argument("--json", action="store_true", help="the ablation as JSON on stdout")
        add_home_option(p)
        ns = p.parse_args(rest[1:])
        if getattr(ns, "home", None):
            use_home(ns.home)
        return _print_ablation(ns.id, ns.json, newest_if_none=True)
    p = _run_parser()
    p.prog = "cep eval ablation CONFIG.toml"
    p.description = (
        "Evaluate a trained model three ways on the same examples: its base without the CEP, its base with "
        "the CEP at inference, and its LoRA adapter with the CEP; print the gains and both baselines."
    )
    p.add_argument("config", metavar="CONFIG.toml", help="an eval config naming a training run (run = …)")
    add_home_option(p)
    ns = p.parse_args(rest)
    if getattr(ns, "home", None):
        use_home(ns.home)
    return run_config(ns, ablation=True)


def _print_ablation(ref: str | None, as_json: bool, newest_if_none: bool = False) -> int:
    from cep_core.evaluation.ablation import get_ablation
    from cep_core.scoring.report import ablation_table

    if ref is None and not newest_if_none:
        stderr_console().print("[red]the ablation did not record its id; see cep eval ablation show")
        return 1
    found = get_ablation(ref)
    if as_json:
        print_json(found.to_dict())
    else:
        stdout_console().print(ablation_table(found))
    return 0 if found.complete else 1


# ---------------------------------------------------------------- compare


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cep eval compare", description="Evaluations side by side with both baselines (default: all)."
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="evaluation ids, unique prefixes, short ids or names")
    p.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    return p


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _figure(value: float | None, bar: float) -> Text:
    if value is None:
        return Text("—", style="dim")
    if value > bar:
        return Text(f"{_pct(value)} ✓", style="bold green")
    return Text(_pct(value))


def _short_model(model: str) -> str:
    """A model path shortened to its last two parts (a run's tiny-base reads as `<run>/tiny-base`)."""
    if model.startswith("/"):
        return "/".join(model.rstrip("/").split("/")[-2:])
    return model


NAME_WIDTH = (
    24  # an evaluation's name in `compare`, so that its short id always shows beside it at 80 columns
)


def compare(ns: argparse.Namespace) -> int:
    from cep_core.evaluation.store import get_evaluation, list_evaluations

    records = [get_evaluation(i) for i in ns.ids] if ns.ids else list_evaluations()
    if ns.json:
        rows = []
        for r in records:
            row = r.to_dict()
            row["beats_llm"] = {
                metric: baselines.beats(metric, value)["llm"] for metric, value in r.headline.items()
            }
            rows.append(row)
        print_json(
            {"baselines": {"llm": baselines.LLM, "small_model": baselines.SMALL_MODEL}, "evaluations": rows}
        )
        return 0
    llm, small = baselines.LLM, baselines.SMALL_MODEL
    table = Table(title="evaluations against the baselines (✓ beats the LLM)", title_justify="left")
    # Name and short id on one line, never broken inside a word (an id folded mid-word is unreadable).
    table.add_column("evaluation · id / model · CEP", overflow="ellipsis", ratio=1, min_width=20)
    for col in ("n", "structured F1", "toolcall F1", "format"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_row(
        Text("LLM baseline", style="italic"), "", _pct(llm["structured_f1"]), _pct(llm["toolcall_f1"]), ""
    )
    table.add_row(
        Text("earlier small model", style="italic"),
        "",
        _pct(small["structured_f1"]),
        _pct(small["toolcall_f1"]),
        "",
        end_section=True,
    )
    for r in records:
        name = r.name or r.id
        label = Text(name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…", style="bold")
        label.append(f" {r.short_id}", style="cyan")
        if r.state != "completed":
            label.append(f" ({r.state})", style="yellow" if r.state in ("running", "stopped") else "red")
        label.append(
            f"\n{_short_model(r.model or r.backend)}{' + adapter' if r.adapter else ''}"
            f" · CEP {r.cep_variant or 'none'}",
            style="dim",
        )
        table.add_row(
            label,
            str(r.n or 0),
            _figure(r.structured_f1, llm["structured_f1"]),
            _figure(r.toolcall_f1, llm["toolcall_f1"]),
            _pct(r.format_compliance),
        )
    console = stdout_console()
    console.print(table)
    if not records:
        console.print("no evaluations yet: cep eval CONFIG.toml")
    return 0


# ---------------------------------------------------------------- show


def _show_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cep eval show", description="The worst examples of an evaluation.")
    p.add_argument("id", metavar="ID", help="an evaluation id, unique prefix, short id or name")
    p.add_argument("--track", choices=["toolcall", "structured"], help="default: every track it has")
    p.add_argument("-n", type=int, default=5, help="examples per track (default 5)")
    p.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    return p


def _last_user(prompt: list[dict[str, Any]]) -> str:
    for message in reversed(prompt):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}


def _clip(text: str, limit: int = 400) -> str:
    """Model text made safe for a terminal (control characters shown as escapes, so an output cannot move the
    cursor or clear the screen) and cut to `limit` characters."""
    text = text.strip().translate(_CONTROL)
    return text if len(text) <= limit else text[:limit] + " …"


def show(ns: argparse.Namespace) -> int:
    from cep_core.evaluation.store import get_evaluation, load_results, worst_examples

    record = get_evaluation(ns.id)
    results = load_results(record)
    tracks = [ns.track] if ns.track else list(results.get("tracks", {}))
    worst = {t: worst_examples(record, t, ns.n) for t in tracks}
    if ns.json:
        print_json({"evaluation": record.to_dict(), "worst": worst})
        return 0
    console = stdout_console()
    console.print(
        f"[bold]{record.id}[/]  {record.model or record.backend}"
        f"{' + adapter' if record.adapter else ''}  CEP {record.cep_variant or 'none'}  ({record.state})"
    )
    for track in tracks:
        figures = results["tracks"].get(track)
        if not figures:
            console.print(f"no {track} examples in this evaluation")
            continue
        console.print(
            f"\n[bold]{track}[/]: F1 {_pct(figures['f1']['macro'])}, format compliance "
            f"{_pct(figures['format_compliance'])}, {figures['n']} examples — worst {len(worst[track])}:"
        )
        for item in worst[track]:
            table = Table(show_header=False, box=None, padding=(0, 1))
            table.add_column(style="bold", no_wrap=True)
            table.add_column(overflow="fold")
            table.add_row("id", f"{item['id']}  ({item['category']}, F1 {item['f1']:.2f})")
            table.add_row("prompt", _clip(_last_user(item["prompt"])))
            table.add_row("expected", _clip(json.dumps(item["expected"], ensure_ascii=False)))
            table.add_row("output", Text(_clip(item["output"] or "") or "(empty)"))
            table.add_row(
                "errors", Text(", ".join(item["errors"]) or "none", style="red" if item["errors"] else "")
            )
            console.print(table)
            console.print()
    return 0
