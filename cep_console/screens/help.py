"""`?`: every key of the current screen and the App, with the binding id to remap it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "Keys: 1 GPUs · 2 Runs · 3 Evals · 4 Traces · ctrl+p command palette (every action) · q quit.\n"
    "Remap any key by its id in ~/.config/cep/console-keys.toml, e.g.\n"
    '  [keys]\n  "runs.launch" = "n,ctrl+n"\n'
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("CEP Console — help (esc closes)", classes="dialog-title")
            with VerticalScroll(classes="detail-body"):
                yield Static(Text(INTRO))
                yield Static(self._table(), id="help-keys")

    def _table(self) -> Table:
        table = Table(box=None, expand=True)
        table.add_column("key", style="bold")
        table.add_column("does")
        table.add_column("id (to remap)", style="dim")
        screens = [s for s in self.app.screen_stack if s is not self]
        seen: set[tuple[str, str]] = set()
        for node in [*(screens[-1:] if screens else []), self.app]:
            for binding in getattr(node, "BINDINGS", []):
                if not isinstance(binding, Binding) or not binding.id:
                    continue
                key = (binding.key, binding.id)
                if key in seen:
                    continue
                seen.add(key)
                keymap = getattr(getattr(self.app, "options", None), "keymap", {}) or {}
                keys = keymap.get(binding.id, binding.key)
                shown = ", ".join(self.app.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
                table.add_row(shown, binding.tooltip or binding.description, binding.id)
        table.add_row("ctrl+p", "command palette", "command_palette")
        return table
