"""Evals: every evaluation with structured F1 and toolcall F1 beside both baselines (marked where it beats
them), format compliance and error categories; the selected one's worst examples; `c` compares marked ones."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Header, Static

from cep_console.evals_feed import (
    HEADLINES,
    EvalRow,
    ablation_of,
    load_evaluations,
    prompt_text,
    worst,
)
from cep_console.formatting import as_json, clip
from cep_console.screens.base import ModeScreen, mode_footer
from cep_core.scoring.baselines import beats


def figure_cell(metric: str, figure: Any) -> Text:
    """`0.71 ▲LLM` (beats the LLM), `0.41 ▲small` (beats only the earlier small model), `0.20`."""
    if not isinstance(figure, int | float):
        return Text("-")
    text = Text(f"{figure:.3f}")
    won = beats(metric, figure)
    if won["llm"]:
        text.append(" ▲LLM", style="bold green")
    elif won["small_model"]:
        text.append(" ▲small", style="yellow")
    elif metric in ("structured_f1", "toolcall_f1"):
        text.append(" ▼", style="red")
    return text


def evaluation_cell(row: EvalRow) -> Text:
    """The name, and the state when it is not completed (a running evaluation has no figures yet)."""
    if row.state in ("", "completed"):
        return Text(clip(row.name, 22))
    style = "cyan" if row.state == "running" else "yellow" if row.state == "stopped" else "red"
    text = Text(clip(row.name, 22 - len(row.state) - 1))
    text.append(f" {row.state}", style=style)
    return text


def top_errors(row: EvalRow, k: int = 3) -> str:
    return ", ".join(f"{name} {count}" for name, count in row.errors.most_common(k)) or "none"


def baseline_caption() -> str:
    from cep_core.scoring.baselines import LLM, SMALL_MODEL

    return (
        f"Baselines — LLM: structured {LLM['structured_f1']:.2f}, toolcall {LLM['toolcall_f1']:.2f} · "
        f"earlier small model: structured {SMALL_MODEL['structured_f1']:.2f}, toolcall "
        f"{SMALL_MODEL['toolcall_f1']:.2f} · ▲ beats · space marks · c compares"
    )


def compare_table(rows: list[EvalRow]) -> Table:
    from cep_core.scoring.baselines import LLM, SMALL_MODEL

    table = Table(expand=True)
    table.add_column("metric", style="bold")
    for row in rows:
        table.add_column(clip(row.name, 24))
    table.add_column("LLM", style="dim")
    table.add_column("small model", style="dim")
    for metric in HEADLINES:
        cells: list[Any] = [figure_cell(metric, r.figures.get(metric)) for r in rows]
        table.add_row(metric, *cells, f"{LLM.get(metric, '-')}", f"{SMALL_MODEL.get(metric, '-')}")
    table.add_row("n", *[str(r.n if r.n is not None else "-") for r in rows], "", "")
    table.add_row("model", *[clip(r.model, 24) for r in rows], "", "")
    table.add_row("CEP", *[r.cep_variant for r in rows], "", "")
    table.add_row("top errors", *[top_errors(r, 4) for r in rows], "", "")
    return table


class CompareScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,c", "dismiss", "Close", id="compare.close")]

    def __init__(self, rows: list[EvalRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Comparing {len(self.rows)} evaluations (esc closes)", classes="dialog-title")
            with VerticalScroll(classes="detail-body"):
                yield Static(compare_table(self.rows), id="compare-table")


def worst_text(examples: dict[str, list[dict[str, Any]]], width: int) -> Text:
    text = Text()
    if not examples:
        return Text("No per-example results for this evaluation.")
    for track, items in examples.items():
        text.append(f"Worst {track} examples\n", style="bold underline")
        for ex in items:
            f1 = ex.get("f1")
            text.append(
                f"{ex.get('id', '?')}  F1 {f1:.2f}\n"
                if isinstance(f1, int | float)
                else f"{ex.get('id', '?')}\n",
                style="bold",
            )
            for label in ("prompt", "expected", "output"):
                shown = prompt_text(ex.get(label)) if label == "prompt" else as_json(ex.get(label, ""))
                text.append(f"  {label:8} ", style="dim")
                text.append(clip(shown, width - 12) + "\n")
            errors = ex.get("errors") or []
            text.append("  errors   ", style="dim")
            text.append((", ".join(map(str, errors)) or "none") + "\n", style="red" if errors else "")
        text.append("\n")
    return text


class EvalsScreen(ModeScreen):
    # The job feed's poll carries a signature of cep.db's evaluations: a change (one started or ended) reloads
    # the list, so a finished evaluation appears without leaving the screen.
    FEED = "runs"
    BINDINGS = [
        Binding(
            "n",
            "evaluate",
            "Evaluate",
            id="evals.evaluate",
            tooltip="Start an evaluation: a model folder or Hub id, or the run shown (after e on Runs)",
        ),
        Binding("space", "mark", "Mark", id="evals.mark", tooltip="Mark or unmark the selected evaluation"),
        Binding(
            "c",
            "compare",
            "Compare",
            id="evals.compare",
            tooltip="Compare the marked evaluations side by side",
        ),
        Binding(
            "escape",
            "clear_filter",
            "All evals",
            id="evals.clear_filter",
            show=False,
            tooltip="Show every evaluation (after e from a run)",
        ),
        Binding("f5", "reload", "Reload", id="evals.reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, EvalRow] = {}
        self.marked: list[str] = []
        self.run_filter: str | None = None
        self.signature: tuple[Any, ...] | None = None  # the evaluations cep.db had at the last load
        self.shown: tuple[str, str] | None = None  # (id, state) of the evaluation whose examples are shown

    def show_state(self, state: Any) -> None:
        """A job poll: reload when cep.db's evaluations changed since the list was read."""
        signature = getattr(state, "evals_signature", ())
        if self.signature is not None and signature and signature != self.signature:
            self.action_reload()
        if signature:
            self.signature = signature

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(baseline_caption(), id="evals-caption")
        yield DataTable(id="evals", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="eval-detail"):
            yield Static("", id="eval-summary")
            yield Static("", id="worst")
        yield mode_footer()

    def on_mount(self) -> None:
        table = self.query_one("#evals", DataTable)
        for key, label in (
            ("mark", " "),
            ("name", "evaluation"),
            ("structured_f1", "struct F1"),
            ("toolcall_f1", "tool F1"),
            ("format_compliance", "format"),
            ("n", "n"),
            ("model", "model"),
            ("cep", "CEP"),
            ("errors", "top errors"),
        ):
            table.add_column(label, key=key)
        super().on_mount()

    def on_screen_resume(self) -> None:
        """Shown again (or for the first time): take a run filter set by `e` on Runs, and reload."""
        if self.app.pending_eval_filter is not None:
            self.run_filter = self.app.pending_eval_filter
            self.app.pending_eval_filter = None
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="evals")
    def _load(self) -> None:
        state = load_evaluations(self.app.options.home)
        self.app.call_from_thread(self._show, state)

    def _show(self, state: Any) -> None:
        rows = state.rows
        if self.run_filter:
            rows = [r for r in rows if r.matches_run(self.run_filter)]
        self.rows = {r.id: r for r in rows}
        table = self.query_one("#evals", DataTable)
        cursor = table.cursor_row
        table.clear()
        for r in rows:
            model = r.model if r.adapter in ("-", "None") else f"{r.model}+LoRA"
            table.add_row(
                "*" if r.id in self.marked else " ",
                evaluation_cell(r),
                *[figure_cell(m, r.figures.get(m)) for m in HEADLINES],
                str(r.n if r.n is not None else "-"),
                clip(model, 28),
                r.cep_variant,
                top_errors(r),
                key=r.id,
            )
        summary = self.query_one("#eval-summary", Static)
        if not state.available or not state.rows:
            summary.update(Text(state.message, style="yellow"))
        elif self.run_filter:
            summary.update(
                f"Evaluations of run {self.run_filter}: {len(rows)} (n evaluates it · esc shows all)"
                if rows
                else f"Run {self.run_filter} has no evaluation yet: n evaluates it · esc shows all"
            )
        else:
            summary.update(f"{len(rows)} evaluation(s), newest first")
        # The examples panel always belongs to a listed evaluation (it showed an earlier one's examples under
        # a list of none): the highlighted row's, or nothing.
        if not rows:
            self.shown = None
            self.query_one("#worst", Static).update("")
        else:
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
            current = rows[table.cursor_row]
            if self.shown != (current.id, current.state):  # another one, or it has ended since
                self._load_worst(current)

    @on(DataTable.RowHighlighted, "#evals")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.rows:
            self._load_worst(self.rows[str(event.row_key.value)])

    @work(thread=True, exclusive=True, group="worst")
    def _load_worst(self, row: EvalRow) -> None:
        examples = worst(row)
        ablation = ablation_of(row, list(self.rows.values()))
        self.app.call_from_thread(self._show_worst, row, examples, ablation)

    def _show_worst(
        self, row: EvalRow, examples: dict[str, list[dict[str, Any]]], ablation: Any = None
    ) -> None:
        """The selected evaluation's worst examples; for a variant of an ablation, the ablation's three variants
        side by side first (the gains from the CEP and from training, both baselines)."""
        if row.id not in self.rows:  # the list changed while the examples were read
            return
        self.shown = (row.id, row.state)
        header = Text(
            f"{row.name} · {row.id} · model {row.model} · adapter {row.adapter} · CEP {row.cep_variant}\n",
            style="bold",
        )
        worst_part = worst_text(examples, self.size.width)
        if ablation is None:
            self.query_one("#worst", Static).update(header + worst_part)
            return
        from rich.console import Group

        from cep_core.scoring.report import ablation_table

        self.query_one("#worst", Static).update(Group(header, ablation_table(ablation), worst_part))

    def action_mark(self) -> None:
        table = self.query_one("#evals", DataTable)
        if not table.row_count:
            return
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        table.update_cell(key, "mark", "*" if key in self.marked else " ")

    def action_compare(self) -> None:
        chosen = [self.rows[k] for k in self.marked if k in self.rows]
        if len(chosen) < 2:
            self.notify("Mark at least two evaluations with space, then press c.", severity="warning")
            return
        self.app.push_screen(CompareScreen(chosen))

    def action_evaluate(self) -> None:
        """The evaluation form: for the run this list shows (after e on Runs), else for a model folder."""
        from cep_console.screens.eval_launch import EvalLaunchScreen

        run_dir = None
        if self.run_filter:
            candidate = self.app.options.home / "runs" / self.run_filter
            run_dir = str(candidate) if (candidate / "run.toml").is_file() else None
        self.app.push_screen(EvalLaunchScreen(self.app.options, run_dir=run_dir), self._launched)

    def _launched(self, job_ids: list[str] | None) -> None:
        if job_ids:
            self.app.wake("runs")
            self.action_reload()  # shows it as running at once

    def action_clear_filter(self) -> None:
        if self.run_filter:
            self.run_filter = None
            self.action_reload()
