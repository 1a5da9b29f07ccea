"""Reading a growing log with bounded memory: the file logic under the console's log view and `cep jobs logs -f`
(toolong keeps it apart from its widgets too).

`LogTail.read_new()` returns the complete lines appended since the last call. It never holds more than
`max_line_bytes` of a partial line and reads at most `max_read_bytes` per call (`pending_bytes` says what is
left). A view that only shows the end sets `skip_bytes`: when it falls behind by more (or opens a huge file)
it jumps to the tail and says how much it skipped; a printer (`skip_bytes=None`) reads everything. A
truncated file (size below our offset) or a replaced one (new inode) restarts from its beginning, flagged
as a reset; a rotated one (renamed away, a new file in its place) is first read to its end, as `tail -F` does. Standard library only: the console imports it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

READ_BYTES = 1 << 20  # read at most this much per call: memory stays bounded however fast the writer is
LINE_BYTES = 16 * 1024  # an unfinished line kept at most (a longer one is handed over in pieces)


@dataclass(slots=True)
class TailUpdate:
    lines: list[str] = field(default_factory=list)
    reset: str = ""  # "truncated" | "replaced" | "" : the view should clear before showing `lines`
    skipped_bytes: int = 0  # bytes jumped over to keep up
    pending_bytes: int = 0  # bytes already in the file and not read yet (read_new again to get them)


class LogTail:
    """One file followed from `offset` (0: its start; `from_end=True`: what is written from now on)."""

    def __init__(
        self,
        path: str | Path,
        *,
        skip_bytes: int | None = 256 * 1024,
        max_read_bytes: int = READ_BYTES,
        max_line_bytes: int = LINE_BYTES,
        from_end: bool = False,
    ):
        self.path = Path(path)
        self.skip_bytes = skip_bytes
        self.max_read_bytes = max_read_bytes
        self.max_line_bytes = max_line_bytes
        self.offset = 0
        self.inode: int | None = None
        self._partial = b""
        self._fd: int | None = None  # held open, so lines written to a file after it is rotated away are read
        self._successor = False  # the path names a newer file, to follow once ours is read to its end
        if from_end:
            try:
                st = os.stat(self.path)
                self.offset, self.inode = st.st_size, st.st_ino
            except OSError:
                pass

    def _current(self, out: TailUpdate) -> int | None:
        """The open file to read. When the path names another file (rotated, replaced), the one we hold is
        read to its end first, as `tail -F` does, then the new one is followed from its start (a reset)."""
        try:
            path_inode: int | None = os.stat(self.path).st_ino
        except OSError:
            path_inode = None
        self._successor = self._fd is not None and path_inode not in (None, self.inode)
        if self._fd is not None and path_inode != self.inode:
            if path_inode is None or self.offset < os.fstat(self._fd).st_size:
                return self._fd  # gone with no successor yet, or still holding unread lines
            self.close()
            self._successor = False
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return None
            inode = os.fstat(self._fd).st_ino
            if self.inode is not None and inode != self.inode:
                out.reset, self.offset, self._partial = "replaced", 0, b""
            self.inode = inode
        return self._fd

    def close(self) -> None:
        """Let go of the file (a later read_new opens the path again)."""
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def take_partial(self, whole_characters: bool = False) -> str:
        """The unfinished last line so far, handed over: at the end of a follow (the writer is done), or to
        show a line being drawn (a progress bar, a prompt) as `tail -f` does. With `whole_characters` a
        multi-byte character cut by the writer stays behind until its last byte comes."""
        cut = utf8_whole_prefix(self._partial) if whole_characters else len(self._partial)
        text, self._partial = self._partial[:cut].decode("utf-8", "replace"), self._partial[cut:]
        return text

    def read_new(self) -> TailUpdate:
        """Everything complete since the last call (bounded); never raises for a missing or vanished file."""
        out = TailUpdate()
        fd = self._current(out)
        if fd is None:
            return out
        st = os.fstat(fd)
        if st.st_size < self.offset:
            out.reset, self.offset, self._partial = "truncated", 0, b""
        behind = st.st_size - self.offset
        if self.skip_bytes is not None and behind > self.skip_bytes:
            out.skipped_bytes = behind - self.skip_bytes
            self.offset = st.st_size - self.skip_bytes
            self._partial = b""
            drop_first = True  # we landed mid-line
        else:
            drop_first = False
        data = os.pread(fd, min(st.st_size - self.offset, self.max_read_bytes), self.offset)
        self.offset += len(data)
        out.pending_bytes = max(0, st.st_size - self.offset)
        if self._successor and not out.pending_bytes:  # ours is done: what waits is the new file's
            with contextlib.suppress(OSError):
                out.pending_bytes = os.stat(self.path).st_size
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

    def read_all_new(self) -> list[str]:
        """read_new until nothing is pending: every complete line there is now, still read in bounded chunks
        (a one-shot reader; a view that must stay responsive calls read_new per tick instead)."""
        lines: list[str] = []
        while True:
            update = self.read_new()
            lines += update.lines
            if not update.pending_bytes:
                return lines


def utf8_whole_prefix(data: bytes) -> int:
    """The length of `data` without a UTF-8 character cut short at its end (invalid bytes count as whole)."""
    for back in range(1, min(4, len(data)) + 1):
        lead = data[-back]
        if lead & 0xC0 == 0x80:  # a continuation byte: look further back for its lead
            continue
        needed = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
        return len(data) - back if back < needed else len(data)
    return len(data)
