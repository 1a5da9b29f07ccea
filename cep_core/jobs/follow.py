"""Following a growing file (a job's stdout.log) the way `tail -F` does, with watchfiles instead of polling.

The reading is LogTail's: at most a bounded chunk in memory however fast the job writes; an unfinished line
(a progress bar redrawn with `\r`, a prompt) is shown as it stands, the rest when it comes, as `tail -f`
does; a file that does not exist yet, is truncated or is replaced is followed from its new start, with a
note saying so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import watchfiles

from cep_core.runs.tail import LogTail


def follow(
    path: str | Path,
    stop: Callable[[], bool] = lambda: False,
    from_start: bool = True,
    idle_timeout_ms: int = 1000,
    on_reset: Callable[[str], None] = lambda note: None,
) -> Iterator[str]:
    """Yield text as it is appended to `path` until `stop()` is true (checked at least every
    `idle_timeout_ms`). `on_reset` gets a note when the file is truncated or replaced. With `from_start=False`
    only what is written after this call is yielded."""
    tail = LogTail(path, skip_bytes=None, from_end=not from_start)  # a printer: every line, bounded reads
    return follow_tail(tail, stop, idle_timeout_ms, on_reset)


def follow_tail(
    tail: LogTail,
    stop: Callable[[], bool],
    idle_timeout_ms: int = 1000,
    on_reset: Callable[[str], None] = lambda note: None,
    *,
    whole_lines: bool = False,
    force_polling: bool | None = None,
) -> Iterator[str]:
    """`follow` over a tail the caller holds already (it fixed where reading starts). With `whole_lines` an
    unfinished line is never handed over, not even at the end: for a parser (the kernel log's), half a line
    is not a line."""
    path = tail.path

    def drain() -> Iterator[str]:
        while True:
            update = tail.read_new()
            if update.reset:
                on_reset(f"{path.name} was {update.reset}; following it from its start")
            if update.lines:
                yield "\n".join(update.lines) + "\n"
            if not update.pending_bytes:
                return

    while True:
        yield from drain()
        if stop():
            yield from drain()
            rest = "" if whole_lines else tail.take_partial()
            if rest:
                yield rest
            return
        shown = "" if whole_lines else tail.take_partial(whole_characters=True)  # the line being written
        if shown:
            yield shown
        watch_dir = path.parent if path.parent.exists() else Path(os.getcwd())
        for _changes in watchfiles.watch(
            watch_dir,
            rust_timeout=idle_timeout_ms,
            yield_on_timeout=True,
            recursive=False,
            debounce=50,
            force_polling=force_polling,
        ):
            break
