"""Following a growing file (a job's stdout.log) the way `tail -F` does, with watchfiles instead of polling.

Handles a file that does not exist yet, is truncated (the offset restarts at zero) or is replaced (a new inode).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import watchfiles


def follow(
    path: str | Path,
    stop: Callable[[], bool] = lambda: False,
    from_start: bool = True,
    idle_timeout_ms: int = 1000,
) -> Iterator[str]:
    """Yield text as it is appended to `path` until `stop()` is true (checked at least every second)."""
    path = Path(path)
    offset = 0
    inode = None
    if not from_start and path.exists():
        offset = path.stat().st_size
    while True:
        chunk, offset, inode = _read_new(path, offset, inode)
        if chunk:
            yield chunk
        if stop():
            chunk, offset, inode = _read_new(path, offset, inode)
            if chunk:
                yield chunk
            return
        watch_dir = path.parent if path.parent.exists() else Path(os.getcwd())
        for _changes in watchfiles.watch(
            watch_dir,
            stop_event=None,
            rust_timeout=idle_timeout_ms,
            yield_on_timeout=True,
            recursive=False,
            debounce=50,
        ):
            break


def _read_new(path: Path, offset: int, inode: int | None) -> tuple[str, int, int | None]:
    try:
        stat = path.stat()
    except OSError:
        return "", 0, None
    if inode is not None and stat.st_ino != inode:
        offset = 0  # replaced by a new file
    if stat.st_size < offset:
        offset = 0  # truncated
    if stat.st_size == offset:
        return "", offset, stat.st_ino
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    return data.decode("utf-8", errors="replace"), offset + len(data), stat.st_ino
