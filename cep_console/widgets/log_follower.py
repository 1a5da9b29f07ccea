"""A log view that follows a file live: watchfiles.awatch in an async worker, the reading in LogTail,
at most `max_lines` lines kept (Textual's Log prunes the oldest), truncation and replacement shown."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import work
from textual.widgets import Log

from cep_console.messages import LogLines
from cep_core.logtail import LogTail

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

    def _update_size(self, updates: int, lines: list[str]) -> None:
        """Textual's Log measures each write's width in a new thread worker holding the written lines; under a
        flood those workers pile up with their lines (memory grows with the log). Measure here instead: the
        batches are bounded by LogTail, and only the lines the view keeps can widen it."""
        if lines:
            from rich.cells import cell_len

            width = max(
                cell_len(self._process_line(line)) for line in lines[-(self.max_lines or len(lines)) :]
            )
            self._update_maximum_width(updates, width)

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
            self.write_line(f"--- {self.path.name} was {message.reset}; following it from its start ---")
        if message.skipped_bytes:
            self.write_line(f"--- skipped {message.skipped_bytes} bytes to keep up ---")
        if message.lines:
            self.write_lines(message.lines)
            self.lines_seen += len(message.lines)
