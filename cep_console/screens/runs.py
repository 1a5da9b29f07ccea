"""Runs: the job table, and for the selected run its progress bar, loss chart (with axes) and live log.

Keys: n launch, d a ready-made run (tiny demo or SmolLM2), s stop (asks first), r resume, e its evaluations, v evaluate it,
space mark and c compare marked runs, y log/linear loss axis. Stop/resume/launch run in workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, ProgressBar, Static

from cep_console.formatting import duration, num
from cep_console.messages import ActionDone
from cep_console.screens.base import ModeScreen, mode_footer
from cep_console.widgets.log_follower import LogFollower
from cep_console.widgets.loss_chart import LossChart

STATE_STYLE = {
    "running": "bold green",
    "queued": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "crashed": "bold red",
    "stopped": "yellow",
    "waiting": "yellow",
}
COLUMNS = (
    ("mark", " "),
    ("name", "name"),
    ("kind", "kind"),
    ("backend", "backend"),
    ("state", "state"),
    ("step", "step/total"),
    ("loss", "loss"),
    ("tps", "tok/s"),
    ("eta", "ETA"),
    ("attempt", "try"),
    ("id", "job"),
)
# Below this width the table leaves out what the detail line or `cep jobs show` has (kind, backend, tok/s, try),
# so the job id still fits 80 columns without a horizontal scrollbar.
WIDE_TABLE = 100
NARROW_HIDDEN = ("kind", "backend", "tps", "attempt")
WIDE_LAYOUT = 120  # from here the loss chart and the log sit side by side


def cells(row: Any, marked: bool = False) -> dict[str, Any]:
    step = f"{row.step if row.step is not None else '-'}/{row.total_steps if row.total_steps else '-'}"
    return {
        "mark": "*" if marked else " ",
        "name": row.name,
        "kind": row.kind,
        "backend": row.backend,
        "state": Text(row.state, style=STATE_STYLE.get(row.state, "")),
        "step": step,
        "loss": num(row.loss, "{:.4f}", "-"),
        "tps": num(row.tokens_per_s, "{:.0f}", "-"),
        "eta": duration(row.eta_s) if row.state in ("running", "queued") else "-",
        "attempt": str(row.attempt),
        "id": row.job_id,
    }


class RunsScreen(ModeScreen):
    FEED = "runs"
    BINDINGS = [
        Binding(
            "n",
            "launch",
            "Launch",
            id="runs.launch",
            tooltip="Open the launch form (model, CEP, data, LoRA, backend, GPUs)",
        ),
        Binding(
            "d",
            "launch_demo",
            "Demo",
            id="runs.launch_demo",
            tooltip="Launch a ready-made run: the tiny demo (a minute) or SmolLM2, a real model (minutes on a CPU)",
        ),
        Binding(
            "s",
            "stop",
            "Stop",
            id="runs.stop",
            tooltip="Stop the selected run (SIGTERM: it checkpoints first)",
        ),
        Binding(
            "r",
            "resume",
            "Resume",
            id="runs.resume",
            tooltip="Resume the selected run: a new attempt from its newest checkpoint",
        ),
        Binding("e", "evals", "Evals", id="runs.evals", tooltip="The selected run's evaluations"),
        Binding(
            "v",
            "evaluate",
            "Evaluate",
            id="runs.evaluate",
            show=False,  # the footer keeps 80 columns; in help and the palette
            tooltip="Evaluate the selected run (its adapter, or its base) as an evaluation job",
        ),
        Binding("space", "mark", "Mark", id="runs.mark", show=False, tooltip="Mark a run to compare"),
        Binding(
            "c",
            "compare",
            "Compare",
            id="runs.compare",
            show=False,
            tooltip="The marked runs side by side: loss curves on one chart, key figures in a table",
        ),
        Binding("y", "log_scale", "Log y", id="runs.log_scale", show=False, tooltip="Loss axis: log/linear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, Any] = {}
        self.selected: str | None = None
        self.pending_selection: str | None = None  # a job to select once the table shows it
        self.marked: list[str] = []
        self.columns: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        with Vertical(id="run-detail"):
            yield Static("No runs yet. Press n to launch one, or d for a ready-made run.", id="run-title")
            with Horizontal(id="run-progress-row"):
                yield ProgressBar(total=1, id="run-progress", show_eta=False)
            with Horizontal(id="run-body"):
                yield LossChart(id="loss-chart")
                yield LogFollower(id="run-log")
        yield mode_footer()

    def on_mount(self) -> None:
        self._set_columns(self.app.size.width)
        super().on_mount()

    def on_resize(self, event: Any) -> None:
        self._set_columns(event.size.width)
        self.set_class(event.size.width >= WIDE_LAYOUT, "-wide")

    def _set_columns(self, width: int) -> None:
        """The columns that fit this width (rebuilt when the width crosses WIDE_TABLE)."""
        wanted = tuple(k for k, _ in COLUMNS if width >= WIDE_TABLE or k not in NARROW_HIDDEN)
        if wanted == self.columns:
            return
        self.columns = wanted
        table = self.query_one("#jobs", DataTable)
        table.clear(columns=True)
        for key, label in COLUMNS:
            if key in wanted:
                table.add_column(label, key=key)
        rows, self.rows = self.rows, {}
        if rows:
            self._fill(table, rows)

    def _fill(self, table: DataTable, fresh: dict[str, Any]) -> None:
        table.clear()
        for job_id, row in fresh.items():
            values = cells(row, job_id in self.marked)
            table.add_row(*[values[k] for k in self.columns], key=job_id)
        if self.selected in fresh:
            table.move_cursor(row=list(fresh).index(self.selected))
        self.rows = fresh

    # ------------------------------------------------------------------ state
    def show_state(self, state: Any) -> None:
        table = self.query_one("#jobs", DataTable)
        fresh = {r.job_id: r for r in state.rows}
        if list(fresh) != list(self.rows):  # jobs came or went: rebuild, keeping the cursor on its job
            self._fill(table, fresh)
        else:
            for job_id, row in fresh.items():
                old = cells(self.rows[job_id], job_id in self.marked)
                for key, value in cells(row, job_id in self.marked).items():
                    if key in self.columns and str(value) != str(old[key]):
                        # update_width: a column grows with its values (an ETA `5m00s` after `-`, a loss
                        # `2.6612` after `-`), rather than cutting them to the width of the first ones.
                        table.update_cell(job_id, key, value, update_width=True)
        self.rows = fresh
        if getattr(state, "error", ""):
            self.query_one("#run-title", Static).update(Text(state.error, style="bold red"))
            return
        if self.pending_selection in fresh:
            self._take_pending_selection()
        elif self.selected is None and state.rows:
            self._select(state.rows[0].job_id)
        elif self.selected in fresh:
            self._show_detail(fresh[self.selected])

    @on(DataTable.RowHighlighted, "#jobs")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.rows:
            self._select(str(event.row_key.value))

    def _select(self, job_id: str) -> None:
        changed = job_id != self.selected
        self.selected = job_id
        row = self.rows[job_id]
        if changed:
            self.query_one(LogFollower).follow(Path(row.run_dir) / "stdout.log")
        self._show_detail(row)

    def _show_detail(self, row: Any) -> None:
        title = Text()
        title.append(f"{row.name} ", style="bold")
        title.append(row.state, style=STATE_STYLE.get(row.state, ""))
        title.append(f" · attempt {row.attempt} · {row.reason}")
        self.query_one("#run-title", Static).update(title)
        bar = self.query_one("#run-progress", ProgressBar)
        if row.total_steps:
            bar.update(total=row.total_steps, progress=row.step or 0)
        elif row.state in ("running", "queued"):
            bar.update(total=None)  # indeterminate (animated) until the job says how many steps
        else:
            bar.update(total=1, progress=0)
        self._load_loss(row.run_dir, row.name, row.kind)

    @work(thread=True, exclusive=True, group="loss")
    def _load_loss(self, run_dir: str, name: str, kind: str) -> None:
        from cep_core.runs.summary import loss_curve

        curve = loss_curve(run_dir)
        self.app.call_from_thread(self._show_loss, name, kind, curve)

    def _show_loss(self, name: str, kind: str, curve: Any) -> None:
        chart = self.query_one(LossChart)
        if curve.losses:
            title = f"loss {curve.losses[-1]:.4f} (min {min(curve.losses):.4f}) at step {curve.last_step}"
        else:
            title = "an evaluation job: no training loss" if kind == "eval" else "loss: no steps yet"
        chart.show([(name, curve)], title=title)

    # ------------------------------------------------------------------ actions
    def _selected_row(self) -> Any:
        if self.selected is None or self.selected not in self.rows:
            self.notify("No run selected.", severity="warning")
            return None
        return self.rows[self.selected]

    def action_launch(self) -> None:
        from cep_console.screens.launch import LaunchScreen

        self.app.push_screen(LaunchScreen(self.app.options), self._launched)

    def action_launch_demo(self) -> None:
        from cep_console.screens.launch import LaunchScreen

        options = self.app.options
        if options.demo_config is None:
            from cep_console.options import write_demo_config

            options.demo_config = write_demo_config(options.home)
        self.app.push_screen(LaunchScreen(options, demo=True), self._launched)

    def _launched(self, job_id: str | None) -> None:
        if job_id:
            self.selected = None
            self.app.wake("runs")

    def action_stop(self) -> None:
        """Ask first: a stop ends the job (a resume is a new attempt), and `s` is one key away from others."""
        from cep_console.screens.confirm import ConfirmScreen

        row = self._selected_row()
        if row is None:
            return
        if row.state not in ("running", "queued", "waiting"):
            self.notify(f"{row.name} is {row.state}: nothing to stop.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"Stopping {row.name} (it writes a checkpoint first)…")
                self._job_action("stop", row.job_id)

        self.app.push_screen(
            ConfirmScreen(
                f"Stop {row.name} ({row.job_id}) at step {row.step if row.step is not None else '-'}?\n"
                "It gets SIGTERM, writes a checkpoint and ends as stopped; r resumes it later.",
                yes="Stop",
            ),
            answered,
        )

    def action_resume(self) -> None:
        row = self._selected_row()
        if row is not None:
            self._job_action("resume", row.job_id)

    @work(thread=True, group="job-actions")
    def _job_action(self, what: str, job_id: str) -> None:
        from cep_core.errors import CepError

        try:
            if what == "stop":
                job = self.app.jobs.stop(job_id)
                text = f"{job.name}: {job.state} ({job.reason})"
            else:
                job = self.app.jobs.resume(job_id)
                text = f"{job.name}: attempt {job.attempt} started as {job.id}"
                self.app.call_from_thread(self._pending_select, job.id)
            self.post_message(ActionDone(what, True, text))
        except CepError as exc:
            self.post_message(ActionDone(what, False, str(exc)))
        self.app.wake("runs")

    def _pending_select(self, job_id: str) -> None:
        """Select a job as soon as the table has it (the attempt a resume just started)."""
        self.pending_selection = job_id
        if job_id in self.rows:
            self._take_pending_selection()

    def _take_pending_selection(self) -> None:
        job_id, self.pending_selection = self.pending_selection, None
        if job_id is not None:
            self._select(job_id)
            self.query_one("#jobs", DataTable).move_cursor(row=list(self.rows).index(job_id))

    def on_action_done(self, message: ActionDone) -> None:
        message.stop()
        self.notify(message.text, severity="information" if message.ok else "error", timeout=12)

    def action_evals(self) -> None:
        row = self._selected_row()
        if row is not None:
            self.app.pending_eval_filter = Path(row.run_dir).name
            self.app.action_show_mode("evals")

    def action_evaluate(self) -> None:
        """The evaluation form for the selected training run (an evaluation job has nothing to evaluate)."""
        from cep_console.screens.eval_launch import EvalLaunchScreen

        row = self._selected_row()
        if row is None:
            return
        if row.kind != "train":
            self.notify(f"{row.name} is an evaluation job: select a training run.", severity="warning")
            return
        self.app.push_screen(EvalLaunchScreen(self.app.options, run_dir=row.run_dir), self._eval_launched)

    def _eval_launched(self, job_ids: list[str] | None) -> None:
        if job_ids:
            self.app.wake("runs")

    def action_mark(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        if row.job_id in self.marked:
            self.marked.remove(row.job_id)
        else:
            self.marked.append(row.job_id)
        self.query_one("#jobs", DataTable).update_cell(
            row.job_id, "mark", "*" if row.job_id in self.marked else " "
        )

    def action_compare(self) -> None:
        from cep_console.screens.run_compare import RunCompareScreen

        chosen = [self.rows[k] for k in self.marked if k in self.rows]
        if len(chosen) < 2:
            self.notify("Mark at least two runs with space, then press c.", severity="warning")
            return
        self.app.push_screen(RunCompareScreen(chosen, self.app.options.home))

    def action_log_scale(self) -> None:
        log = self.query_one(LossChart).toggle_log()
        self.notify(f"Loss axis: {'log' if log else 'linear'} scale.", timeout=3)
