"""`cep runs compare A B …`: training runs side by side — what was trained and how it went — with their loss
curves on one chart (plotext, on the terminal). The console's Runs screen shows the same (space marks, c)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cep_core.cli.options import print_json, stdout_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="training runs side by side: settings, losses, throughput, evaluations")
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    c = rsub.add_parser(
        "compare",
        help="two or more runs side by side, their loss curves on one chart",
        description="Runs side by side: model, CEP, LoRA, learning rate, steps, losses, tokens/s, wall time and "
        "the newest evaluation's F1, then the loss curves on one chart (on a terminal, or with --chart).",
    )
    c.add_argument("runs", nargs="+", metavar="RUN", help="run ids, unique prefixes, run folders or job ids")
    c.add_argument("--log", action="store_true", help="the chart's loss axis on a log scale")
    chart = c.add_mutually_exclusive_group()
    chart.add_argument(
        "--chart", action="store_true", help="draw the chart even when stdout is not a terminal"
    )
    chart.add_argument("--no-chart", action="store_true", help="the table only")
    c.add_argument(
        "--width", type=int, default=0, metavar="COLS", help="chart width (default: the terminal's)"
    )
    c.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
    c.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cep_core.errors import InputError
    from cep_core.runs.summary import FIGURES, figure, loss_curve, resolve_run, summarize_run

    if len(args.runs) < 2:
        raise InputError("give at least two runs to compare (cep jobs list shows them)", field="RUN")
    dirs = [resolve_run(ref) for ref in args.runs]
    summaries = [summarize_run(d) for d in dirs]
    if args.json:
        print_json({"runs": [s.to_dict() for s in summaries]})
        return 0
    console = stdout_console()
    table = Table(title="runs side by side", title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for s in summaries:
        table.add_column(f"{s.name}\n{s.run_id}", overflow="fold")
    for label, attribute, fmt in FIGURES:
        table.add_row(label, *[figure(s, attribute, fmt) for s in summaries])
    console.print(table)
    if args.no_chart or not (args.chart or sys.stdout.isatty()):
        return 0
    import plotext

    from cep_core.charts import draw_loss

    width = args.width or min(console.width, 120)
    curves: list[tuple[str, Any]] = [(s.name, loss_curve(d)) for s, d in zip(summaries, dirs, strict=True)]
    if not draw_loss(plotext, curves, log_y=args.log, title="training loss"):
        console.print("no loss recorded yet in these runs")
        return 0
    plotext.plotsize(width, 20)  # after draw_loss, which clears the figure
    plotext.theme("clear")
    chart = plotext.build()
    sys.stdout.write((chart if sys.stdout.isatty() else plotext.uncolorize(chart)) + "\n")
    return 0
