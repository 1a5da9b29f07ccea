"""The GPU side of the console: sample, judge, keep a short history per GPU, notice new Xid events.

Plain Python (no widgets): the GPU screen's worker calls `GpuFeed.poll()` and posts the `GpuState` back.
Every NVML call goes through cep_core's Sampler, which turns NVML trouble into data, never an exception.
"""

from __future__ import annotations

import collections
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.gpu.health import HealthReport, HealthSettings, evaluate
from cep_core.gpu.kernel_log import XidEvent
from cep_core.gpu.sample import Sampler

METRICS = ("util", "mem", "temp", "power")
HISTORY = 60  # samples kept per metric and GPU for the cards' sparklines (one a second: the last minute)
SERIES = 600  # samples kept per GPU for the history charts (`h` on the GPU screen): ten minutes
# The history charts' series, in the units a user reads: sample time, util %, memory GiB, °C, W; and the
# latest limits each is drawn against.
SERIES_KEYS = ("t", "util", "mem_gib", "temp_c", "power_w")
LIMIT_KEYS = ("mem_total_gib", "temp_slowdown_c", "power_limit_w")


@dataclass(slots=True)
class GpuState:
    """One poll: the health report (with its sample and events), histories and what is new."""

    report: HealthReport
    history: dict[int, dict[str, list[float]]]
    new_events: list[XidEvent] = field(default_factory=list)
    kernel_log_note: str = ""  # why the kernel log could not be read, when it could not
    source: str = "nvml"
    # Per GPU: SERIES_KEYS -> values over the last SERIES samples, LIMIT_KEYS -> the latest limit (or None).
    series: dict[int, dict[str, Any]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)


def metric_values(gpu: Any) -> dict[str, float | None]:
    """The four card figures as percentages (None where the GPU does not report them)."""

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    used, total = num(gpu.mem_used), num(gpu.mem_total)
    temp, slow = num(gpu.temperature), num(gpu.temp_slowdown)
    power, limit = num(gpu.power_w), num(gpu.power_limit_w)
    return {
        "util": num(gpu.util_gpu),
        "mem": 100 * used / total if used is not None and total else None,
        "temp": 100 * temp / HealthSettings().temp_scale_c(slow) if temp is not None else None,
        "power": 100 * power / limit if power is not None and limit else None,
    }


def series_values(gpu: Any) -> dict[str, float | None]:
    """One sample of the history charts' series, in their units (None where the GPU does not report it)."""

    def num(v: Any, scale: float = 1.0) -> float | None:
        return float(v) / scale if isinstance(v, int | float) and not isinstance(v, bool) else None

    return {
        "util": num(gpu.util_gpu),
        "mem_gib": num(gpu.mem_used, 1024**3),
        "temp_c": num(gpu.temperature),
        "power_w": num(gpu.power_w),
        "mem_total_gib": num(gpu.mem_total, 1024**3),
        "temp_slowdown_c": num(gpu.temp_slowdown),
        "power_limit_w": num(gpu.power_limit_w),
    }


def event_key(ev: XidEvent) -> str:
    from cep_core.gpu.store import event_key as key

    return key(ev)


class GpuFeed:
    """Owns the sampler of one source (NVML or a replay) for the whole console session."""

    def __init__(
        self,
        replay: Path | None = None,
        home: Path | None = None,
        *,
        read_kernel_log: bool = True,
        kernel_log_readers: list | None = None,
        events_every_s: float = 15.0,
        history: int = HISTORY,
    ):
        self.home = home
        self.read_kernel_log = read_kernel_log
        self.readers = kernel_log_readers
        self.events_every_s = events_every_s
        if replay is not None:
            from cep_core.gpu.replay import ReplaySource

            self.source: Any = ReplaySource(replay, loop=True)
        else:
            self.source = None
        self.sampler = Sampler(self.source)
        self._history: dict[int, dict[str, collections.deque[float]]] = {}
        self._maxlen = history
        self._series: dict[int, dict[str, collections.deque[float | None]]] = {}
        self._limits: dict[int, dict[str, float | None]] = {}
        self._names: dict[int, str] = {}
        self._seen: set[str] | None = None  # event keys shown already; None before the first poll
        self._events: list[XidEvent] = []
        self._events_at = 0.0
        self.kernel_log_note = ""

    @property
    def is_replay(self) -> bool:
        return self.source is not None

    def close(self) -> None:
        self.sampler.close()

    def _gather_events(self) -> list[XidEvent]:
        """Replays bring their recorded kernel log; the real host: the readable kernel log (probed once, an
        unreadable one becomes a note) remembered in cep.db, at most every `events_every_s`."""
        from cep_core.gpu.watch import gather_events, remember_events

        if self.is_replay:
            return gather_events(source=self.source)
        now = time.monotonic()
        if self._events_at and now - self._events_at < self.events_every_s:
            return self._events
        self._events_at = now
        live: list[XidEvent] = []
        if self.read_kernel_log:
            from cep_core.gpu.sources import default_log_readers, first_readable, read_history_of

            reader, attempts = first_readable(
                self.readers if self.readers is not None else default_log_readers()
            )
            self.kernel_log_note = (
                ""
                if reader is not None
                else "kernel log unreadable ("
                + "; ".join(f"{a.name}: {a.reason}" for a in attempts)
                + ") — Xids come from NVML events and cep.db only"
            )
            if reader is not None:
                try:
                    live = read_history_of(reader)
                except (OSError, subprocess.SubprocessError) as exc:  # cep.db's events still count
                    self.kernel_log_note = f"kernel log read failed ({reader.name}: {exc})"
        self._events = remember_events(live, self.home)
        return self._events
        self._events_at = now
        readable = False
        if self.read_kernel_log:
            from cep_core.gpu.sources import default_log_readers, first_readable

            reader, attempts = first_readable(
                self.readers if self.readers is not None else default_log_readers()
            )
            readable = reader is not None
            self.kernel_log_note = (
                ""
                if readable
                else "kernel log unreadable ("
                + "; ".join(f"{a.name}: {a.reason}" for a in attempts)
                + ") — Xids come from NVML events and cep.db only"
            )
        self._events = gather_events(home=self.home, read_kernel_log=readable, readers=self.readers)
        return self._events

    def poll(self) -> GpuState:
        """Sample once, judge, extend histories. Blocking: call it from a worker thread."""
        sample = self.sampler.sample()
        try:
            events = self._gather_events()
        except Exception as exc:  # noqa: BLE001 — a broken log source is a note, not a crash
            events = []
            self.kernel_log_note = f"kernel log unreadable ({type(exc).__name__}: {exc})"
        report = evaluate(sample, events)
        for gpu in sample.gpus:
            hist = self._history.setdefault(
                gpu.index, {m: collections.deque(maxlen=self._maxlen) for m in METRICS}
            )
            for name, value in metric_values(gpu).items():
                if value is not None:
                    hist[name].append(value)
            if gpu.error:
                continue  # a lost GPU's gap shows as the series ending
            values = series_values(gpu)
            series = self._series.setdefault(
                gpu.index, {k: collections.deque(maxlen=SERIES) for k in SERIES_KEYS}
            )
            series["t"].append(sample.ts)
            for key in SERIES_KEYS[1:]:
                series[key].append(values[key])
            self._limits[gpu.index] = {k: values[k] for k in LIMIT_KEYS}
            self._names[gpu.index] = str(gpu.name)
        keys = {event_key(ev): ev for ev in events}
        if self._seen is None:
            new: list[XidEvent] = []
            self._seen = set(keys)
        else:
            new = [ev for k, ev in keys.items() if k not in self._seen]
            self._seen.update(keys)
        history = {i: {m: list(d) for m, d in h.items()} for i, h in self._history.items()}
        return GpuState(
            report=report,
            history=history,
            new_events=new,
            kernel_log_note=self.kernel_log_note,
            source=sample.source,
            series={
                i: {**{k: list(d) for k, d in series.items()}, **self._limits.get(i, {})}
                for i, series in self._series.items()
            },
            names=dict(self._names),
        )
