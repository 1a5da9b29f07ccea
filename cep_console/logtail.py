"""Following a job's log with bounded memory: the file logic of the log view (toolong keeps it apart too).

`LogTail.read_new()` returns the complete lines appended since the last call. It never holds more than
`max_line_bytes` of a partial line, reads at most `max_read_bytes` per call and, when it falls behind by more
than `skip_bytes` (or opens a huge file), jumps to the tail and says how much it skipped. A truncated file
(size below our offset) or a replaced one (new inode) restarts from its beginning, flagged as a reset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class TailUpdate:
    lines: list[str] = field(default_factory=list)
    reset: str = ""  # "truncated" | "replaced" | "" : the view should clear before showing `lines`
    skipped_bytes: int = 0  # bytes jumped over to keep up


class LogTail:
    def __init__(
        self,
        path: str | Path,
        *,
        skip_bytes: int = 256 * 1024,
        max_read_bytes: int = 1 << 20,
        max_line_bytes: int = 16 * 1024,
    ):
        self.path = Path(path)
        self.skip_bytes = skip_bytes
        self.max_read_bytes = max_read_bytes
        self.max_line_bytes = max_line_bytes
        self.offset = 0
        self.inode: int | None = None
        self._partial = b""

    def read_new(self) -> TailUpdate:
        """Everything complete since the last call (bounded); never raises for a missing or vanished file."""
        out = TailUpdate()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return out
        try:
            st = os.fstat(fd)
            if self.inode is not None and st.st_ino != self.inode:
                out.reset, self.offset, self._partial = "replaced", 0, b""
            elif st.st_size < self.offset:
                out.reset, self.offset, self._partial = "truncated", 0, b""
            self.inode = st.st_ino
            behind = st.st_size - self.offset
            if behind > self.skip_bytes:
                out.skipped_bytes = behind - self.skip_bytes
                self.offset = st.st_size - self.skip_bytes
                self._partial = b""
                drop_first = True  # we landed mid-line
            else:
                drop_first = False
            data = os.pread(fd, min(st.st_size - self.offset, self.max_read_bytes), self.offset)
        finally:
            os.close(fd)
        self.offset += len(data)
        if not data:
            return out
        data = self._partial + data
        pieces = data.split(b"\n")
        self._partial = pieces.pop()
        if drop_first and pieces:
            out.skipped_bytes += len(pieces.pop(0)) + 1
        while len(self._partial) > self.max_line_bytes:  # a line without an end: show it in pieces
            pieces.append(self._partial[: self.max_line_bytes])
            self._partial = self._partial[self.max_line_bytes :]
        out.lines = [p.decode("utf-8", "replace").rstrip("\r") for p in pieces]
        return out
