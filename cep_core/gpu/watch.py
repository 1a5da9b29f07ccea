"""Watching for Xids: follow the first readable kernel-log source (gpu/sources.py) plus NVML's Xid event API.

NVML's event API (nvmlEventSetWait_v2) runs in its own thread. An Xid seen by both is reported once.
When nothing is readable (no root, kernel.dmesg_restrict=1, no journal) the watcher says which sources it
tried and why each failed. Events go to cep.db so history survives restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynvml

from cep_core.gpu.kernel_log import KIND_XID, KernelLogParser, XidEvent, normalize_pci
from cep_core.gpu.sources import (
    NoReadableSource,
    SourceAttempt,
    boot_time,
    default_log_readers,
    first_readable,
    journal_message,
    read_kernel_history,
)
from cep_core.gpu.xid_catalog import severity_of

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
                    for ev in parser.feed(journal_message(line)):
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


def gather_events(
    source: Any = None,
    home: str | Path | None = None,
    read_kernel_log: bool = True,
    window_s: float = 86400.0,
    readers: list[Any] | None = None,
) -> list[XidEvent]:
    """The Xid events a health verdict should consider.

    A replay source brings its own recorded kernel log; otherwise: what cep.db holds for the window plus a
    one-shot read of the live kernel log (new events are stored) from the first readable of `readers`
    (default_log_readers when None).
    """
    if source is not None and hasattr(source, "kernel_log_lines"):
        parser = KernelLogParser(source="replay")
        return [ev for line in source.kernel_log_lines() for ev in parser.feed(line)]
    live = read_kernel_history(readers, window_s=window_s)[0] if read_kernel_log else []
    return remember_events(live, home, window_s)


def remember_events(
    live: list[XidEvent], home: str | Path | None = None, window_s: float = 86400.0
) -> list[XidEvent]:
    """Store what was just read from the kernel log in cep.db and return the window's events from there (a
    past Xid still counts after the log rotates); with no usable cep.db, judge on what the log says now."""
    from cep_core.gpu.store import open_store, recent_events, record_events
    from cep_core.store.state import StateDbError

    try:
        db = open_store(home)
        record_events(db, live)
        return recent_events(db, since_ts=time.time() - window_s)
    except (sqlite3.Error, OSError, StateDbError):
        return live
