"""Messages the console's workers post back to the UI thread (workers never touch widgets)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class GpuUpdated(Message):
    """A new GPU poll (cep_console.gpu_feed.GpuState)."""

    def __init__(self, state: Any) -> None:
        super().__init__()
        self.state = state


class RunsUpdated(Message):
    """A new job table (cep_console.runs_feed.RunsState)."""

    def __init__(self, state: Any) -> None:
        super().__init__()
        self.state = state


class TracesUpdated(Message):
    """New per-agent statistics (cep_console.traces_feed.TracesOverview)."""

    def __init__(self, overview: Any) -> None:
        super().__init__()
        self.overview = overview


class LogLines(Message):
    """Lines appended to the followed log; `reset` says the file was truncated or replaced."""

    def __init__(self, path: str, lines: list[str], reset: str = "", skipped_bytes: int = 0) -> None:
        super().__init__()
        self.path = path
        self.lines = lines
        self.reset = reset
        self.skipped_bytes = skipped_bytes


class ActionDone(Message):
    """A user action run in a worker finished: `ok` with a message for a notification."""

    def __init__(self, what: str, ok: bool, text: str, result: Any = None) -> None:
        super().__init__()
        self.what = what
        self.ok = ok
        self.text = text
        self.result = result
