"""The evaluation form (a modal): what to evaluate — a training run (with or without its adapter) or a model
folder or Hub id (with an optional adapter) — the CEP, the mode, the eval sets with their sample sizes, the
device. `ctrl+l` starts it as an evaluation job through cep_core (the path `cep eval CONFIG --detach` takes);
the Evals screen shows it when it ends. Opened by `v` on Runs (the selected run) and `n` on Evals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from cep_console.widgets.tick_box import TickBox
from cep_core.evaluation.launch import DEFAULT_SETS, EVAL_MODES, EvalRequest
from cep_core.prompts.prefix import NO_CEP, VARIANTS

SET_ROWS = 3
KINDS = (("a training run", "run"), ("a model folder or Hub id", "model"))
RUN_CEP = "(the run's)"


class EvalLaunchScreen(ModalScreen[list[str] | None]):
    """Dismisses with the started jobs' ids, or None when cancelled."""

    BINDINGS = [
        Binding("ctrl+l", "start", "Start", id="eval_launch.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="eval_launch.cancel"),
    ]

    def __init__(self, options: Any, run_dir: str | None = None) -> None:
        super().__init__()
        self.options = options
        self.run_dir = run_dir

    def compose(self) -> ComposeResult:
        kind = "run" if self.run_dir else "model"
        target = Path(self.run_dir).name if self.run_dir else ""
        with Vertical(classes="dialog", id="eval-dialog"):
            yield Static("Evaluate · ctrl+l start · esc cancel", classes="dialog-title")
            with Grid(id="eval-form"):
                yield Label("evaluate")
                yield Select(
                    [(label, value) for label, value in KINDS],
                    value=kind,
                    allow_blank=False,
                    id="e-kind",
                    compact=True,
                )
                yield Label("run / model")
                yield Input(
                    target, id="e-target", placeholder="run id, or /path/to/model, or org/name", compact=True
                )
                yield Label("adapter")
                yield TickBox("the run's LoRA adapter", True, id="e-use-adapter", compact=True)
                yield Label("adapter folder")
                yield Input("", id="e-adapter", placeholder="optional, for a model", compact=True)
                yield Label("CEP")
                yield Select(
                    [(RUN_CEP, ""), *[(v, v) for v in (*VARIANTS, NO_CEP)]],
                    value="" if kind == "run" else NO_CEP,
                    allow_blank=False,
                    id="e-cep",
                    compact=True,
                )
                yield Label("mode")
                yield Select(
                    [(f"{mode}: {what}", mode) for mode, what in EVAL_MODES.items()],
                    value=next(iter(EVAL_MODES)),
                    allow_blank=False,
                    id="e-mode",
                    compact=True,
                )
                for i in range(SET_ROWS):
                    source, sample = DEFAULT_SETS[i] if i < len(DEFAULT_SETS) else ("", 0)
                    yield Label(f"set {i + 1}")
                    with Horizontal(classes="set-row"):
                        yield Input(
                            source,
                            id=f"e-set-{i}",
                            placeholder="bfcl:… | bfcl-json:… | hermes:… | a file",
                            compact=True,
                        )
                        yield Input(
                            str(sample) if source else "",
                            id=f"e-sample-{i}",
                            placeholder="n (0 all)",
                            compact=True,
                            classes="sample",
                        )
                yield Label("device")
                yield Select(
                    [(d, d) for d in ("auto", "cpu", "cuda")],
                    value="auto",
                    allow_blank=False,
                    id="e-device",
                    compact=True,
                )
                yield Label("max new tokens")
                yield Input("256", id="e-max-new-tokens", compact=True)
                yield Label("name")
                yield Input("", id="e-name", placeholder="default: from the run or model", compact=True)
            yield Static("", id="eval-error")
            with Horizontal(id="eval-buttons"):
                yield Button("Start", id="start", variant="success", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self._kind_changed()

    @on(Select.Changed, "#e-kind")
    def _kind_changed(self) -> None:
        run = self.query_one("#e-kind", Select).value == "run"
        self.query_one("#e-use-adapter", Checkbox).disabled = not run
        self.query_one("#e-adapter", Input).disabled = run

    def request(self) -> EvalRequest:
        def text(widget_id: str) -> str:
            return self.query_one(f"#{widget_id}", Input).value

        return EvalRequest(
            target=text("e-target"),
            kind=str(self.query_one("#e-kind", Select).value),
            use_adapter=self.query_one("#e-use-adapter", Checkbox).value,
            adapter=text("e-adapter"),
            cep=str(self.query_one("#e-cep", Select).value),
            sets=[(text(f"e-set-{i}"), text(f"e-sample-{i}")) for i in range(SET_ROWS)],
            mode=str(self.query_one("#e-mode", Select).value),
            name=text("e-name"),
            device=str(self.query_one("#e-device", Select).value),
            max_new_tokens=text("e-max-new-tokens"),
        )

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        self.query_one("#start", Button).disabled = True
        self.query_one("#eval-error", Static).update("Starting…")
        self._start(self.request())

    @work(thread=True, exclusive=True, group="eval-launch")
    def _start(self, request: EvalRequest) -> None:
        from cep_core.errors import CepError
        from cep_core.evaluation.launch import launch

        try:
            jobs = launch(request, self.options.home)
        except CepError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._done, jobs)

    def _failed(self, text: str) -> None:
        self.query_one("#eval-error", Static).update(Text(text, style="bold red"))
        self.query_one("#start", Button).disabled = False

    def _done(self, jobs: list[Any]) -> None:
        names = ", ".join(f"{job.name} ({job.id})" for job in jobs)
        self.notify(f"{names}: follow it on Runs; its results appear on Evals.", title="Evaluation started")
        self.dismiss([job.id for job in jobs])

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
