"""Where Xids are read from: the kernel-log sources, in the order they are tried.

/dev/kmsg, `journalctl -k -f`, /var/log/kern.log (read through LogTail, as every growing file is). Each
reader can `probe()` (None, or why it cannot be read), `read_available()` (what it holds now) and `follow()`.
When none is readable, NoReadableSource lists what was tried and why each failed, with the fix. The watcher
(gpu/watch.py) follows the first readable one; status and check read it once (`read_kernel_history`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cep_core.errors import CepError
from cep_core.gpu.kernel_log import KernelLogParser, XidEvent
from cep_core.runs.tail import READ_BYTES, LogTail


@dataclass(frozen=True, slots=True)
class SourceAttempt:
    name: str
    ok: bool
    reason: str = ""


class NoReadableSource(CepError):
    """No kernel-log source and no NVML event API could be read."""

    def __init__(self, attempts: list[SourceAttempt]):
        self.attempts = attempts
        lines = "\n".join(f"  - {a.name}: {a.reason}" for a in attempts)
        super().__init__(
            "no Xid source is readable; tried:\n" + lines + "\nFix: run as root (or with CAP_SYSLOG), or set "
            "`sudo sysctl kernel.dmesg_restrict=0`, or add your user to the systemd-journal/adm group."
        )


def boot_time() -> float:
    import psutil

    return float(psutil.boot_time())


# --- kernel-log readers -------------------------------------------------------------------------------------


class KmsgReader:
    """/dev/kmsg: one record per read(); opening it replays the kernel ring buffer first."""

    name = "/dev/kmsg"

    def __init__(self, path: str = "/dev/kmsg"):
        self.path = path
        self.name = path

    def probe(self) -> str | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return "does not exist (a container without /dev/kmsg?)"
        except PermissionError:
            return f"permission denied ({_dmesg_restrict_note()})"
        except OSError as exc:
            return f"cannot open: {exc.strerror}"
        try:
            os.read(fd, 8192)
        except BlockingIOError:
            pass
        except PermissionError:
            return f"permission denied on read ({_dmesg_restrict_note()})"
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.EINVAL):
                return f"cannot read: {exc.strerror}"
        finally:
            os.close(fd)
        return None

    def _records(self, fd: int, stop: threading.Event | None, follow: bool) -> Iterator[str]:
        while stop is None or not stop.is_set():
            try:
                data = os.read(fd, 8192)
            except BlockingIOError:
                if not follow:
                    return
                select.select([fd], [], [], 0.25)
                continue
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten while we read: go on
                    continue
                raise
            if not data:
                return
            yield data.decode("utf-8", "replace")

    def read_available(self) -> list[str]:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return list(self._records(fd, None, follow=False))
        finally:
            os.close(fd)

    def follow(self, stop: threading.Event, from_start: bool = False) -> Iterator[str]:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not from_start:
                os.lseek(fd, 0, os.SEEK_END)
            yield from self._records(fd, stop, follow=True)
        finally:
            os.close(fd)


def _dmesg_restrict_note() -> str:
    try:
        value = Path("/proc/sys/kernel/dmesg_restrict").read_text().strip()
    except OSError:
        value = "?"
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}, not root"
    return f"{who}; kernel.dmesg_restrict={value}"


JOURNAL_ENTRIES = 50_000  # journal entries read at most at once (JSON, ~1 KiB each)


class JournalReader:
    """`journalctl -k` in JSON (exact timestamps); `-f` to follow."""

    name = "journalctl -k -f"

    def __init__(self, executable: str = "journalctl"):
        self.executable = executable

    def _cmd(self, *extra: str) -> list[str]:
        return [self.executable, "-k", "-o", "json", "-q", "--no-pager", *extra]

    def probe(self) -> str | None:
        if shutil.which(self.executable) is None:
            return "journalctl is not installed"
        try:
            proc = subprocess.run(self._cmd("-n", "1"), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"did not run: {exc}"
        err = (proc.stderr or "").strip().splitlines()
        if proc.returncode != 0:
            return f"exit {proc.returncode}: {err[0] if err else 'no message'}"
        if not proc.stdout.strip():
            why = err[0] if err else "no kernel messages visible to this user"
            return f"no kernel messages ({why})"
        return None

    def read_available(self, since_ts: float | None = None, max_entries: int = JOURNAL_ENTRIES) -> list[str]:
        """The kernel's journal entries (since `since_ts`), the newest `max_entries` at most: journalctl picks
        them, so a host with years of journal costs a bounded read, as kern.log's does."""
        extra = ["--since", f"@{int(since_ts)}"] if since_ts else []
        proc = subprocess.run(
            self._cmd(*extra, "-n", str(max_entries)), capture_output=True, text=True, timeout=60
        )
        return proc.stdout.splitlines()

    def follow(self, stop: threading.Event, from_start: bool = False) -> Iterator[str]:
        proc = subprocess.Popen(
            self._cmd("-f", "-n", "all" if from_start else "0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        try:
            while not stop.is_set():
                ready, _, _ = select.select([proc.stdout], [], [], 0.25)
                if not ready:
                    if proc.poll() is not None:
                        return
                    continue
                line = proc.stdout.readline()
                if not line:
                    return
                yield line
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


class FileFollower:
    """A growing text file (kern.log, or any saved log). The reading is LogTail's, as for every growing file:
    bounded reads, rotation and truncation followed from the new start; jobs.follow wakes it with watchfiles."""

    def __init__(
        self,
        path: str | Path = "/var/log/kern.log",
        force_polling: bool | None = None,
        max_read_bytes: int = READ_BYTES,
    ):
        self.path = Path(path)
        self.name = str(self.path)
        self.force_polling = force_polling
        self.max_read_bytes = max_read_bytes
        # Set once follow() holds the file at its starting point: whatever is written after it is news.
        self.ready = threading.Event()

    def probe(self) -> str | None:
        try:
            with self.path.open("rb") as fh:
                fh.read(1)
        except FileNotFoundError:
            return "does not exist"
        except PermissionError:
            return "permission denied (add your user to the adm group, or run as root)"
        except OSError as exc:
            return f"cannot read: {exc.strerror}"
        return None

    def read_available(self, max_bytes: int = 64 * 2**20) -> list[str]:
        """The lines of the file's last `max_bytes` (a line cut at that edge is dropped), read in chunks of
        at most `max_read_bytes`."""
        self.path.open("rb").close()  # unreadable now: raise, so read_kernel_history says why
        tail = LogTail(self.path, skip_bytes=max_bytes, max_read_bytes=self.max_read_bytes)
        lines = tail.read_all_new()
        rest = tail.take_partial()
        return [*lines, rest] if rest else lines

    def follow(self, stop: threading.Event, from_start: bool = False) -> Iterator[str]:
        """Complete lines (in chunks) until `stop` is set; a half-written line waits for its end."""
        from cep_core.jobs.follow import follow_tail

        tail = LogTail(
            self.path, skip_bytes=None, max_read_bytes=self.max_read_bytes, from_end=not from_start
        )
        self.ready.set()
        yield from follow_tail(
            tail, stop.is_set, idle_timeout_ms=500, whole_lines=True, force_polling=self.force_polling
        )


def default_log_readers() -> list[Any]:
    return [KmsgReader(), JournalReader(), FileFollower("/var/log/kern.log")]


def first_readable(readers: list[Any]) -> tuple[Any | None, list[SourceAttempt]]:
    attempts: list[SourceAttempt] = []
    for reader in readers:
        reason = reader.probe()
        attempts.append(SourceAttempt(reader.name, reason is None, reason or "readable"))
        if reason is None:
            return reader, attempts
    return None, attempts


def journal_message(line: str) -> str:
    """journalctl JSON records carry the message in MESSAGE; the parser also reads them, this is a fast path."""
    if line.startswith("{") and '"MESSAGE"' in line:
        try:
            rec = json.loads(line)
        except ValueError:
            return line
        msg = rec.get("MESSAGE")
        if isinstance(msg, str) and "NVRM" not in msg:
            return ""
    return line


# --- one-shot history (for status / check) ------------------------------------------------------------------


def read_kernel_history(
    readers: list[Any] | None = None, window_s: float = 86400.0
) -> tuple[list[XidEvent], list[SourceAttempt]]:
    """Parse what the first readable kernel-log source holds now (no following)."""
    reader, attempts = first_readable(default_log_readers() if readers is None else readers)
    if reader is None:
        return [], attempts
    try:
        return read_history_of(reader, window_s), attempts
    except (OSError, subprocess.SubprocessError) as exc:
        return [], [*attempts[:-1], SourceAttempt(reader.name, False, f"read failed: {exc}")]


def read_history_of(reader: Any, window_s: float = 86400.0) -> list[XidEvent]:
    """The Xid events one source that probed readable holds now (the journal: the last `window_s` of it).
    Raises OSError or SubprocessError when the read fails."""
    if isinstance(reader, JournalReader):
        lines = reader.read_available(since_ts=time.time() - window_s)
    else:
        lines = reader.read_available()
    parser = KernelLogParser(boot_time=boot_time(), source=reader.name)
    events: list[XidEvent] = []
    for chunk in lines:
        for line in chunk.splitlines():
            events.extend(parser.feed(line))
    return events
