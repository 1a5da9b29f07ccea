"""What every mode screen shares: the header, the footer, and subscribing to one of the App's feeds."""

from __future__ import annotations

from typing import Any

from textual import events, on
from textual.screen import Screen
from textual.widgets import Footer

PALETTE_MIN_WIDTH = 100  # below this the footer's room goes to the keys; ctrl+p still works (and is in help)


def mode_footer() -> Footer:
    """The footer of every mode screen: compact, so the screen's keys and the four modes fit 80 columns."""
    return Footer(compact=True, show_command_palette=False)


class ModeScreen(Screen):
    """A mode's screen. `FEED` names the App signal it shows (gpu, runs, traces) and `show_state` gets it.

    The App may offer `screen_painted()`, called after this screen's first refresh (the console loads
    cep_core then, so the user sees a screen before paying for it).
    """

    FEED: str | None = None

    def on_mount(self) -> None:
        painted = getattr(self.app, "screen_painted", None)
        if painted is not None:
            self.call_after_refresh(painted)
        if self.FEED is None:
            return
        signal = getattr(self.app, f"{self.FEED}_signal")
        signal.subscribe(self, self.show_state)
        current = {"gpu": "gpu_state", "runs": "runs_state", "traces": "traces_overview"}[self.FEED]
        state = getattr(self.app, current)
        if state is not None:
            self.show_state(state)

    @on(events.Resize)
    def _fit_footer(self, event: events.Resize) -> None:
        for footer in self.query(Footer):
            footer.show_command_palette = event.size.width >= PALETTE_MIN_WIDTH

    def show_state(self, state: Any) -> None:  # pragma: no cover - every mode screen overrides it
        raise NotImplementedError
