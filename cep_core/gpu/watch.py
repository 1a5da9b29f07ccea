"""Watching for Xids: follow the first readable kernel-log source plus NVML's Xid event API.

Kernel-log sources, in order: /dev/kmsg, `journalctl -k -f`, /var/log/kern.log (followed with watchfiles).
NVML's event API (nvmlEventSetWait_v2) runs in its own thread. An Xid seen by both is reported once.
When nothing is readable (no root, kernel.dmesg_restrict=1, no journal) the watcher says which sources it
tried and why each failed. Events go to cep.db so history survives restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import queue
import select
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pynvml

from cep_core.errors import CepError
from cep_core.gpu.kernel_log import KIND_XID, KernelLogParser, XidEvent, normalize_pci
from cep_core.gpu.xid_catalog import severity_of


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

    def read_available(self, since_ts: float | None = None) -> list[str]:
        extra = ["--since", f"@{int(since_ts)}"] if since_ts else []
        proc = subprocess.run(self._cmd(*extra), capture_output=True, text=True, timeout=60)
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
    """A growing text file (kern.log, or any saved log), followed with watchfiles; survives rotation."""

    def __init__(self, path: str | Path = "/var/log/kern.log", force_polling: bool | None = None):
        self.path = Path(path)
        self.name = str(self.path)
        self.force_polling = force_polling
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
        with self.path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            return fh.read().decode("utf-8", "replace").splitlines()

    def follow(self, stop: threading.Event, from_start: bool = False) -> Iterator[str]:
        import watchfiles

        fh = self.path.open("rb")
        inode = os.fstat(fh.fileno()).st_ino
        if not from_start:
            fh.seek(0, os.SEEK_END)
        self.ready.set()
        partial = b""
        # One watcher for the whole follow; it wakes us on a change in the folder (rotation included) or
        # every half second, so `stop` is honoured promptly.
        changes = watchfiles.watch(
            self.path.parent,
            stop_event=stop,
            yield_on_timeout=True,
            rust_timeout=500,
            debounce=50,
            step=20,
            force_polling=self.force_polling,
            raise_interrupt=False,
        )
        try:
            while not stop.is_set():
                chunk = fh.read()
                if chunk:
                    partial += chunk
                    *lines, partial = partial.split(b"\n")
                    for line in lines:
                        yield line.decode("utf-8", "replace")
                    continue
                fh, inode, reopened = self._maybe_reopen(fh, inode)
                if reopened:
                    partial = b""
                    continue
                if next(changes, None) is None:
                    return  # stopped
        finally:
            changes.close()
            fh.close()

    def _maybe_reopen(self, fh: Any, inode: int) -> tuple[Any, int, bool]:
        """Rotation (new inode) or truncation (size < offset): start at the top of the new file."""
        try:
            st = os.stat(self.path)
        except OSError:
            return fh, inode, False
        if st.st_ino != inode:
            fh.close()
            fh = self.path.open("rb")
            return fh, st.st_ino, True
        if st.st_size < fh.tell():
            fh.seek(0)
            return fh, inode, True
        return fh, inode, False


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


# --- NVML's Xid event API -----------------------------------------------------------------------------------


def _handle_key(handle: Any) -> Any:
    if hasattr(handle, "index"):
        return ("replay", handle.index)
    try:
        return ("nvml", ctypes.addressof(handle.contents))
    except (AttributeError, TypeError, ValueError):
        return ("id", id(handle))


class NvmlXidListener:
    """nvmlEventSetCreate + nvmlDeviceRegisterEvents(XidCriticalError) + nvmlEventSetWait_v2, in a thread."""

    name = "NVML Xid events"

    def __init__(self, source: Any = None):
        if source is None:
            from cep_core.gpu.nvml import NvmlSource

            source = NvmlSource()
        self.source = source
        self._set: Any = None
        self._pci: dict[Any, str | None] = {}

    def probe(self) -> str | None:
        api = self.source.api
        try:
            api.nvmlInit()
        except pynvml.NVMLError as exc:
            from cep_core.gpu.nvml import classify_init_error

            return classify_init_error(exc).message
        try:
            self._set = api.nvmlEventSetCreate()
            registered = 0
            for i in range(api.nvmlDeviceGetCount()):
                try:
                    h = api.nvmlDeviceGetHandleByIndex(i)
                    api.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeXidCriticalError, self._set)
                    busid = api.nvmlDeviceGetPciInfo(h).busId
                    self._pci[_handle_key(h)] = normalize_pci(
                        busid.decode() if isinstance(busid, bytes) else busid
                    )
                    registered += 1
                except pynvml.NVMLError:
                    continue  # not supported on this GPU, or it is lost
        except pynvml.NVMLError as exc:
            return f"event API unavailable: {exc}"
        return None if registered else "no GPU accepted Xid event registration"

    def run(self, stop: threading.Event, emit: Callable[[XidEvent], None]) -> None:
        api = self.source.api
        while not stop.is_set():
            try:
                data = api.nvmlEventSetWait_v2(self._set, 500)
            except pynvml.NVMLError_Timeout:
                continue
            except pynvml.NVMLError:
                stop.wait(1.0)  # e.g. GPU lost: keep the thread alive, the kernel log says the rest
                continue
            xid = int(data.eventData)
            gi = getattr(data, "gpuInstanceId", 0xFFFFFFFF)
            ci = getattr(data, "computeInstanceId", 0xFFFFFFFF)
            emit(
                XidEvent(
                    ts=time.time(),
                    xid=xid,
                    pci=self._pci.get(_handle_key(data.device)),
                    pid=None,
                    process=None,
                    message="reported by NVML's Xid event API",
                    kind=KIND_XID,
                    severity=str(severity_of(xid)),
                    source="nvml",
                    gpu_instance=None if gi == 0xFFFFFFFF else int(gi),
                    compute_instance=None if ci == 0xFFFFFFFF else int(ci),
                )
            )
        with contextlib.suppress(Exception):
            api.nvmlEventSetFree(self._set)
        with contextlib.suppress(Exception):
            api.nvmlShutdown()  # balances probe()'s nvmlInit


# --- de-duplication and the watcher -------------------------------------------------------------------------


class Deduper:
    """Drops an event already reported by another source for the same (Xid, GPU) within `window_s`."""

    def __init__(self, window_s: float = 30.0):
        self.window_s = window_s
        self._seen: dict[tuple[Any, Any], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def admit(self, ev: XidEvent, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        xid = 79 if ev.kind != KIND_XID else ev.xid  # "fallen off the bus" without a number is Xid 79
        key = (xid, normalize_pci(ev.pci))
        with self._lock:
            prev = self._seen.get(key)
            if prev is not None and now - prev[0] <= self.window_s and prev[1] != ev.source:
                return False
            self._seen[key] = (now, ev.source)
            return True


class XidWatcher:
    """Follows the first readable kernel-log source and NVML's event API; events land in `events()` and cep.db.

    Use as a context manager or call start()/stop(). `attempts` says what was tried and why it failed.
    """

    def __init__(
        self,
        home: str | Path | None = None,
        readers: list[Any] | None = None,
        nvml_source: Any = None,
        use_nvml: bool = True,
        record: bool = True,
        from_start: bool = False,
        dedupe_window_s: float = 30.0,
        on_event: Callable[[XidEvent], None] | None = None,
    ):
        self.home = home
        self.readers = default_log_readers() if readers is None else readers
        self.use_nvml = use_nvml
        self.nvml_source = nvml_source
        self.record = record
        self.from_start = from_start
        self.on_event = on_event
        self.deduper = Deduper(dedupe_window_s)
        self.attempts: list[SourceAttempt] = []
        self.log_source: Any = None
        self.error: str | None = None  # set when a followed source fails after start()
        self._queue: queue.Queue[XidEvent] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._db: Any = None
        self._db_lock = threading.Lock()

    def start(self) -> XidWatcher:
        self.log_source, self.attempts = first_readable(self.readers)
        listener = None
        if self.use_nvml:
            listener = NvmlXidListener(self.nvml_source)
            reason = listener.probe()
            self.attempts.append(SourceAttempt(listener.name, reason is None, reason or "readable"))
            if reason is not None:
                listener = None
        if self.log_source is None and listener is None:
            raise NoReadableSource(self.attempts)
        if self.record:
            from cep_core.gpu.store import open_store

            self._db = open_store(self.home)
        if self.log_source is not None:
            self._spawn(self._follow_log, self.log_source)
        if listener is not None:
            self._spawn(listener.run, self._stop, self._emit)
        return self

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"cep-xid-{len(self._threads)}")
        t.start()
        self._threads.append(t)

    def _follow_log(self, reader: Any) -> None:
        boot = boot_time()
        parser = KernelLogParser(boot_time=boot, source=reader.name)
        try:
            for chunk in reader.follow(self._stop, from_start=self.from_start):
                for line in chunk.splitlines() or [chunk]:
                    for ev in parser.feed(_journal_message(line)):
                        self._emit(ev)
        except Exception as exc:  # the source went away: say so instead of dying silently in a thread
            self.error = f"{reader.name} stopped: {exc}"

    def _emit(self, ev: XidEvent) -> None:
        if not self.deduper.admit(ev):
            return
        if self._db is not None:
            from cep_core.gpu.store import record_events

            with self._db_lock, contextlib.suppress(sqlite3.Error):
                record_events(self._db, [ev])
        self._queue.put(ev)
        if self.on_event is not None:
            self.on_event(ev)

    def get(self, timeout: float | None = None) -> XidEvent | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[XidEvent]:
        out = []
        while (ev := self.get(timeout=0)) is not None:
            out.append(ev)
        return out

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> XidWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _journal_message(line: str) -> str:
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
        if isinstance(reader, JournalReader):
            lines = reader.read_available(since_ts=time.time() - window_s)
        else:
            lines = reader.read_available()
    except (OSError, subprocess.SubprocessError) as exc:
        return [], [*attempts[:-1], SourceAttempt(reader.name, False, f"read failed: {exc}")]
    parser = KernelLogParser(boot_time=boot_time(), source=reader.name)
    events: list[XidEvent] = []
    for chunk in lines:
        for line in chunk.splitlines():
            events.extend(parser.feed(line))
    return events, attempts


def gather_events(
    source: Any = None,
    home: str | Path | None = None,
    read_kernel_log: bool = True,
    window_s: float = 86400.0,
) -> list[XidEvent]:
    """The Xid events a health verdict should consider.

    A replay source brings its own recorded kernel log; otherwise: what cep.db holds for the window plus a
    one-shot read of the live kernel log (new events are stored).
    """
    if source is not None and hasattr(source, "kernel_log_lines"):
        parser = KernelLogParser(source="replay")
        return [ev for line in source.kernel_log_lines() for ev in parser.feed(line)]
    from cep_core.gpu.store import open_store, recent_events, record_events
    from cep_core.store.state import StateDbError

    live: list[XidEvent] = []
    if read_kernel_log:
        live, _ = read_kernel_history(window_s=window_s)
    try:
        db = open_store(home)
        record_events(db, live)
        return recent_events(db, since_ts=time.time() - window_s)
    except (sqlite3.Error, OSError, StateDbError):  # no history here: judge on what the log says now
        return live
