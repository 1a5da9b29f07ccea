"""Runs side by side (space marks, c compares on the Runs screen): their loss curves on one chart and their
key figures in a table — the same figures and chart as `cep runs compare` (cep_core.runs.summary, charts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from cep_console.widgets.loss_chart import LossChart


def figures_table(summaries: list[Any]) -> Table:
    from cep_core.runs.summary import FIGURES, figure

    table = Table(expand=True)
    table.add_column("", style="bold", no_wrap=True)
    for s in summaries:
        table.add_column(f"{s.name} · {s.run_id.rsplit('-', 1)[-1]}", overflow="ellipsis", no_wrap=True)
    for label, attribute, fmt in FIGURES:
        table.add_row(label, *[figure(s, attribute, fmt) for s in summaries])
    return table


class RunCompareScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,c", "dismiss", "Close", id="run_compare.close"),
        Binding("y", "log_scale", "Log y", id="run_compare.log_scale"),
    ]

    def __init__(self, rows: list[Any], home: Path) -> None:
        super().__init__()
        self.rows = rows
        self.home = home

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(
                f"Comparing {len(self.rows)} runs · y log/linear loss axis · esc closes",
                classes="dialog-title",
            )
            yield LossChart(id="compare-chart")
            with VerticalScroll(id="compare-figures"):
                yield Static("Reading the runs…", id="compare-table")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="run-compare")
    def _load(self) -> None:
        from cep_core.runs.summary import loss_curve, summarize_run

        summaries = [summarize_run(r.run_dir, self.home) for r in self.rows]
        curves = [(s.name, loss_curve(r.run_dir)) for s, r in zip(summaries, self.rows, strict=True)]
        self.app.call_from_thread(self._show, summaries, curves)

    def _show(self, summaries: list[Any], curves: list[tuple[str, Any]]) -> None:
        self.query_one(LossChart).show(curves, title="training loss")
        self.query_one("#compare-table", Static).update(figures_table(summaries))

    def action_log_scale(self) -> None:
        self.query_one(LossChart).toggle_log()
