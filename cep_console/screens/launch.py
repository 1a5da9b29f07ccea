"""The launch form (a modal): model, CEP variant, dataset, LoRA and training settings, backend, GPU count;
then the pre-flight checks; the run starts only when none fails (warnings need an explicit override)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from cep_console.launch_form import (
    BACKENDS,
    CEP_VARIANTS,
    LaunchRequest,
    can_launch,
    run_checks,
    write_config,
)
from cep_console.widgets.tick_box import TickBox

FIELDS = (
    ("name", "name"),
    ("model", "model"),
    ("dataset", "dataset"),
    ("lora_r", "LoRA r"),
    ("lora_alpha", "LoRA alpha"),
    ("lora_dropout", "LoRA dropout"),
    ("max_steps", "max steps"),
    ("learning_rate", "learning rate"),
    ("batch_size", "batch size"),
    ("max_seq_length", "max seq len"),
    ("gpus", "GPU count"),
)
STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


class LaunchScreen(ModalScreen[str | None]):
    """Dismisses with the new job's id, or None when cancelled."""

    BINDINGS = [
        # priority: they work while a field has focus (an Input would take ctrl+k as "delete to the end")
        Binding("ctrl+k", "check", "Pre-flight", id="launch.check", priority=True),
        Binding("ctrl+l", "launch", "Launch", id="launch.start", priority=True),
        Binding("escape", "cancel", "Cancel", id="launch.cancel"),
    ]

    def __init__(self, options: Any, demo: bool = False) -> None:
        super().__init__()
        self.options = options
        self.demo = (
            demo  # a ready-made run: the form starts from a shipped preset (cep_core.training.presets)
        )
        self.preset = "demo"
        if demo and options.demo_config is not None:
            self.request = LaunchRequest.from_config(options.demo_config)
        else:
            self.request = LaunchRequest()
        self.checks: list[Any] = []
        self.config_path: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="launch-dialog"):
            title = "Launch a ready-made run" if self.demo else "Launch a training run"
            yield Static(title + " · ctrl+k pre-flight · ctrl+l launch · esc cancel", classes="dialog-title")
            with Grid(id="launch-form"):
                if self.demo:
                    from cep_core.training.presets import PRESETS

                    yield Label("ready-made")
                    yield Select(
                        [(p.title, p.name) for p in PRESETS],
                        value=self.preset,
                        allow_blank=False,
                        id="f-preset",
                        compact=True,
                        tooltip=" ".join(f"{p.title}: {p.description}." for p in PRESETS),
                    )
                for key, label in FIELDS:
                    yield Label(label)
                    yield Input(str(getattr(self.request, key)), id=f"f-{key}", compact=True)
                yield Label("CEP variant")
                yield Select(
                    [(v, v) for v in CEP_VARIANTS],
                    value=self.request.cep,
                    allow_blank=False,
                    id="f-cep",
                    compact=True,
                )
                yield Label("backend")
                yield Select(
                    [(b, b) for b in BACKENDS],
                    value=self.request.backend,
                    allow_blank=False,
                    id="f-backend",
                    compact=True,
                )
            yield Static("", id="launch-error")
            with VerticalScroll(id="checks-box"):
                yield Static("Pre-flight: not run yet (ctrl+k).", id="checks")
            yield TickBox("launch despite warnings", False, id="override", compact=True)  # never pre-ticked
            with Horizontal(id="launch-buttons"):
                yield Button("Pre-flight", id="check", variant="primary", compact=True)
                yield Button("Launch", id="launch", variant="success", disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        if self.demo:
            self.action_check()

    def _read_form(self) -> LaunchRequest:
        req = self.request
        for key, _ in FIELDS:
            setattr(req, key, self.query_one(f"#f-{key}", Input).value)
        req.cep = str(self.query_one("#f-cep", Select).value)
        req.backend = str(self.query_one("#f-backend", Select).value)
        return req

    @on(Select.Changed, "#f-preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        """Another ready-made run: its shipped config (copied into the home) fills the form."""
        from cep_console.options import write_demo_config

        if event.value == self.preset:
            return
        self.preset = str(event.value)
        self.request = LaunchRequest.from_config(write_demo_config(self.options.home, self.preset))
        for key, _ in FIELDS:
            self.query_one(f"#f-{key}", Input).value = str(getattr(self.request, key))
        self.query_one("#f-cep", Select).value = self.request.cep
        self.action_check()

    @on(Input.Changed)
    @on(Select.Changed)
    def _form_changed(self) -> None:
        if self.checks:  # the checks were for the old values
            self._void_checks("Pre-flight: the form changed; run it again (ctrl+k).")

    def _void_checks(self, message: str) -> None:
        """No checks, no launch, and the override unticked: a tick given for one set of warnings never carries
        over to the next pre-flight's."""
        self.checks = []
        self.query_one("#override", Checkbox).value = False
        self.query_one("#checks", Static).update(message)
        self._update_launch()

    @on(Checkbox.Changed, "#override")
    def _override_changed(self) -> None:
        self._update_launch()

    def _update_launch(self) -> None:
        ok, why = can_launch(self.checks, self.query_one("#override", Checkbox).value)
        self.query_one("#launch", Button).disabled = not ok
        self.query_one("#launch-error", Static).update("" if ok else why if self.checks else "")

    @on(Button.Pressed, "#check")
    def action_check(self) -> None:
        from cep_core.errors import InputError

        error = self.query_one("#launch-error", Static)
        try:
            self.config_path = write_config(self._read_form(), self.options.home)
        except InputError as exc:
            error.update(Text(str(exc), style="bold red"))
            return
        error.update("")
        self._void_checks("Pre-flight: running…")
        self._run_checks(self.config_path)

    @work(thread=True, exclusive=True, group="preflight")
    def _run_checks(self, config: Any) -> None:
        checks = run_checks(config, self.options.home)
        self.app.call_from_thread(self._show_checks, checks)

    def _show_checks(self, checks: list[Any]) -> None:
        self.checks = checks
        text = Text("Pre-flight:\n", style="bold")
        for c in checks:
            text.append(f" {c.status.upper():4} ", style=STATUS_STYLE.get(c.status, ""))
            text.append(f"{c.name}: {c.detail}\n")
        if self.options.replay is not None and any(c.name.startswith("gpu") for c in checks):
            text.append(
                f"The gpu checks are of this machine; the GPU screen shows a REPLAY of {self.options.replay.name}.\n",
                style="italic",
            )
        self.query_one("#checks", Static).update(text)
        self._update_launch()

    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        ok, why = can_launch(self.checks, self.query_one("#override", Checkbox).value)
        if not ok:
            self.query_one("#launch-error", Static).update(Text(why, style="bold red"))
            self.notify(why, severity="warning")
            return
        self.query_one("#launch", Button).disabled = True
        self._start(self.config_path, self.request.backend, self.request.gpu_count(), self.request.name)

    @work(thread=True, exclusive=True, group="launch")
    def _start(self, config: Any, backend: str, gpus: int, name: str) -> None:
        from cep_core.errors import CepError

        try:
            job = self.app.jobs.launch(config, backend=backend, gpus=gpus, name=name)
        except CepError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._done, job)

    def _failed(self, text: str) -> None:
        self.query_one("#launch-error", Static).update(Text(f"could not start: {text}", style="bold red"))
        self._update_launch()

    def _done(self, job: Any) -> None:
        self.notify(f"{job.name} started ({job.id})", title="Run launched")
        self.dismiss(job.id)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
