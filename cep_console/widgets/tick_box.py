"""A checkbox whose state reads without colour: `✓` when ticked, blank when not. Textual's Checkbox draws an
`X` in both states and tells them apart by colour alone, which a 256-colour terminal (tmux's default) can lose:
"launch despite warnings" looked ticked when it was not."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    @property
    def _button(self) -> Content:
        self.BUTTON_INNER = "✓" if self.value else " "
        return super()._button
