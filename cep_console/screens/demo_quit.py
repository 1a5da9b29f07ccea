"""Quitting `--demo` when its temporary home holds trained adapters: say what would be deleted, keep or delete.

The demo home is removed at exit (it is a scratch area), but a run trained in it is the user's work: quitting
must not delete it without a word. Dismissed with "keep", "delete", or None (cancel: back to the console).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class DemoQuitScreen(ModalScreen[str | None]):
    BINDINGS = [
        Binding("k", "choose('keep')", "Keep", id="demo_quit.keep"),
        Binding("d", "choose('delete')", "Delete", id="demo_quit.delete"),
        Binding("escape", "choose(None)", "Cancel", id="demo_quit.cancel"),
    ]

    def __init__(self, contents) -> None:  # noqa: ANN001 — options.DemoHomeContents
        super().__init__()
        self.contents = contents

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="demo-quit"):
            yield Static("Quit the demo", classes="dialog-title")
            yield Static(
                f"The demo home {self.contents.home} holds {self.contents.describe()}. Quitting deletes it "
                "unless you keep it (then: cep-console --home DIR).",
                id="demo-quit-text",
            )
            with Horizontal(classes="buttons"):
                yield Button("Keep it (k)", id="keep", variant="primary", compact=True)
                yield Button("Delete it (d)", id="delete", variant="error", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()  # enter keeps: the safe answer

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
