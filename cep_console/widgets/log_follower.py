"""A log view that follows a file live: watchfiles.awatch in an async worker, the reading in LogTail,
at most `max_lines` lines kept (Textual's Log prunes the oldest), truncation and replacement shown."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import work
from textual.widgets import Log

from cep_console.messages import LogLines
from cep_core.runs.tail import LogTail

MAX_LINES = 2000


class LogFollower(Log):
    """`follow(path)` starts (or switches) following; `stop_following()` ends it."""

    def __init__(
        self, *, max_lines: int = MAX_LINES, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(max_lines=max_lines, highlight=False, auto_scroll=True, id=id, classes=classes)
        self.path: Path | None = None
        self.lines_seen = 0

    def follow(self, path: str | Path) -> None:
        path = Path(path)
        if path == self.path:
            return
        self.path = path
        self.clear()
        self.lines_seen = 0
        self._follow(path)

    def append(self, lines: list[str]) -> None:
        """Add lines through Log.write, which measures their width in this call. Log.write_lines measures in a
        new thread worker holding the written lines, and under a flood those workers pile up with their lines
        (memory grows with the log). Only the lines the view keeps are written, so only they can widen it."""
        if not lines:
            return
        kept = lines[-self.max_lines :] if self.max_lines else lines
        at_end = self.is_vertical_scroll_end and not self.is_vertical_scrollbar_grabbed
        self.write(("\n" if self.lines else "") + "\n".join(kept), scroll_end=self.auto_scroll and at_end)

    def stop_following(self) -> None:
        self.path = None
        self.workers.cancel_group(self, "follow")

    @work(exclusive=True, group="follow", name="log follower")
    async def _follow(self, path: Path) -> None:
        import watchfiles

        tail = LogTail(path)
        stop = asyncio.Event()

        def watch_filter(change: watchfiles.Change, changed: str) -> bool:
            return Path(changed).name == path.name

        await self._read(tail)
        try:
            while not path.parent.is_dir():  # the run directory is not there yet
                await asyncio.sleep(0.5)
            async for _changes in watchfiles.awatch(
                path.parent,
                watch_filter=watch_filter,
                stop_event=stop,
                debounce=20,
                step=20,
                rust_timeout=500,
                yield_on_timeout=True,
                recursive=False,
            ):
                await self._read(tail)
        finally:
            stop.set()

    async def _read(self, tail: LogTail) -> None:
        while True:
            update = await asyncio.to_thread(tail.read_new)
            if update.lines or update.reset or update.skipped_bytes:
                self.post_message(LogLines(str(tail.path), update.lines, update.reset, update.skipped_bytes))
            if not update.pending_bytes:  # caught up
                return

    def on_log_lines(self, message: LogLines) -> None:
        message.stop()
        if self.path is None or message.path != str(self.path):
            return
        if message.reset:
            self.clear()
            self.append([f"--- {self.path.name} was {message.reset}; following it from its start ---"])
        if message.skipped_bytes:
            self.append([f"--- skipped {message.skipped_bytes} bytes to keep up ---"])
        if message.lines:
            self.append(message.lines)
            self.lines_seen += len(message.lines)
