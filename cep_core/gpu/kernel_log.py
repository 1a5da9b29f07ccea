"""Kernel-log parsing: NVIDIA Xid reports and "fallen off the bus" messages -> `XidEvent`s.

The same driver message reaches users through many carriers (plain dmesg, `dmesg -T`, `dmesg --time-format
iso`, syslog / kern.log in any locale, journalctl text or JSON, raw /dev/kmsg records). We do not require a
known prefix: the NVRM message is found anywhere in the line, and the prefix is read only for the time.
The parser is stateful only for the three-line fallen-off-the-bus form. It never raises on any input.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime

from cep_core.gpu.xid_catalog import severity_of

KIND_XID = "xid"
KIND_FALLEN_OFF_BUS = "fallen_off_bus"


@dataclass(slots=True)
class XidEvent:
    """One Xid report. `ts` is unix seconds when the line says when (or boot time is known), else None."""

    ts: float | None
    xid: int | None
    pci: str | None  # normalised "dddd:bb:dd" (domain:bus:device, lower case)
    pid: int | None
    process: str | None
    message: str
    kind: str
    severity: str
    uptime: float | None = None  # seconds since boot, for dmesg / kmsg forms
    gpu_instance: int | None = None  # MIG attribution
    compute_instance: int | None = None
    source: str = "log"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> XidEvent:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


# --- the NVRM messages -------------------------------------------------------------------------------------

_PCI = r"[0-9a-fA-F]{1,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?"
_XID_RE = re.compile(
    r"NVRM: Xid \((?:PCI:)?(?P<pci>" + _PCI + r")(?P<mig>[^)]*)\):\s*(?P<xid>\d{1,6})\b,?\s*(?P<rest>.*)"
)
_PID_RE = re.compile(
    r"^pid=(?P<pid>'?<unknown>'?|\d+)\s*,?\s*(?:name=(?P<name><unknown>|[^,]*?)\s*(?:,\s*|$))?"
)
_MIG_GI = re.compile(r"GPU-I:\s*(\d+)")
_MIG_CI = re.compile(r"GPU-CI:\s*(\d+)")
# "NVRM: GPU 0000:01:00.0: GPU has fallen off the bus." and the one-line form of the three-line message.
_FALLEN_RE = re.compile(r"fallen off the bus", re.IGNORECASE)
_GPU_PCI_RE = re.compile(r"NVRM: (?:The NVIDIA )?GPU (?:at (?:PCI:)?)?(?P<pci>" + _PCI + r")")
_NVIDIA_GPU_HEAD = re.compile(r"NVRM: The NVIDIA GPU (?P<pci>" + _PCI + r")")


def normalize_pci(text: str | None) -> str | None:
    """ "00000000:B3:00.0", "0000:b3:00", "PCI:0000:b3:00" -> "0000:b3:00" (so NVML and the log agree)."""
    if not text:
        return None
    m = re.search(r"([0-9a-fA-F]{1,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})", text)
    if not m:
        return None
    domain = int(m.group(1), 16)
    return f"{domain:04x}:{m.group(2).lower()}:{m.group(3).lower()}"


# --- the carriers' prefixes (only for the time) ------------------------------------------------------------

_KMSG_RE = re.compile(r"^(?P<prio>\d+),(?P<seq>\d+),(?P<usec>\d+),[^;]*;(?P<msg>.*)$")
_UPTIME_RE = re.compile(r"^\[\s*(?P<up>\d+\.\d+)\]")
_CTIME_RE = re.compile(
    r"^\[(?:\w+\s+)?(?P<mon>\w+)\s+(?P<day>\d{1,2})\s+(?P<hms>\d\d:\d\d:\d\d)\s+(?P<year>\d{4})\]"
)
_ISO_RE = re.compile(r"(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)")
_SYSLOG_RE = re.compile(r"^(?P<a>\S+)\s+(?P<b>\S+)\s+(?P<hms>\d\d:\d\d:\d\d)(?:\.\d+)?\s+\S+\s+kernel:")

# Month names as syslog/journalctl print them in common locales (lower case, trailing dots removed).
_MONTHS: dict[str, int] = {}
for _names in (
    "jan feb mar apr may jun jul aug sep oct nov dec",  # en (C locale)
    "jan feb mär apr mai jun jul aug sep okt nov dez",  # de
    "janv févr mars avr mai juin juil août sept oct nov déc",  # fr
    "ene feb mar abr may jun jul ago sep oct nov dic",  # es
    "gen feb mar apr mag giu lug ago set ott nov dic",  # it
    "jan fev mar abr mai jun jul ago set out nov dez",  # pt
    "jan feb mrt apr mei jun jul aug sep okt nov dec",  # nl
    "sty lut mar kwi maj cze lip sie wrz paź lis gru",  # pl
    "янв фев мар апр мая июн июл авг сен окт ноя дек",  # ru
    "січ лют бер кві тра чер лип сер вер жов лис гру",  # uk
    "oca şub mar nis may haz tem ağu eyl eki kas ara",  # tr
):
    for _i, _n in enumerate(_names.split(), start=1):
        _MONTHS.setdefault(_n, _i)
for _i in range(1, 13):
    _MONTHS.setdefault(f"{_i}月", _i)  # zh / ja
    _MONTHS.setdefault(f"{_i}월", _i)  # ko
_MONTHS.update({"march": 3, "june": 6, "july": 7, "sept": 9, "май": 5, "мар": 3, "июнь": 6, "июль": 7})


def _month(token: str) -> int | None:
    t = token.lower().rstrip(".")
    if t in _MONTHS:
        return _MONTHS[t]
    return _MONTHS.get(t[:3]) if len(t) > 3 else None


def _local_ts(year: int, month: int, day: int, hms: str) -> float | None:
    try:
        h, mi, s = (int(x) for x in hms.split(":"))
        return datetime(year, month, day, h, mi, s).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _iso_ts(text: str) -> float | None:
    t = text.replace(",", ".").replace(" ", "T", 1)
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    m = re.match(r"(.*[+-]\d\d)(\d\d)$", t)
    if m and ":" not in t[-5:]:
        t = f"{m.group(1)}:{m.group(2)}"
    try:
        return datetime.fromisoformat(t).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


@dataclass(slots=True)
class _Line:
    message: str
    ts: float | None
    uptime: float | None


def _split_prefix(line: str, boot_time: float | None, now: float) -> _Line:
    """Find the line's time (wall clock or since boot) and the kernel message after the prefix."""
    m = _KMSG_RE.match(line)
    if m:
        up = int(m.group("usec")) / 1e6
        return _Line(m.group("msg"), boot_time + up if boot_time is not None else None, up)
    if line.startswith("{"):
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if isinstance(rec, dict) and isinstance(rec.get("MESSAGE"), str):
            ts = None
            with contextlib.suppress(TypeError, ValueError):
                ts = int(rec.get("__REALTIME_TIMESTAMP")) / 1e6
            return _Line(rec["MESSAGE"], ts, None)
    m = _UPTIME_RE.match(line)
    if m:
        up = float(m.group("up"))
        return _Line(line[m.end() :], boot_time + up if boot_time is not None else None, up)
    m = _CTIME_RE.match(line)
    if m:
        month = _month(m.group("mon"))
        ts = _local_ts(int(m.group("year")), month, int(m.group("day")), m.group("hms")) if month else None
        return _Line(line[m.end() :], ts, None)
    m = _SYSLOG_RE.match(line)
    if m:
        ts = None
        a, b = m.group("a"), m.group("b")
        month, day = (_month(a), b) if _month(a) else (_month(b), a)
        if month and day.isdigit():
            today = datetime.fromtimestamp(now)
            ts = _local_ts(today.year, month, int(day), m.group("hms"))
            if ts is not None and ts > now + 86400:  # a December line read in January
                ts = _local_ts(today.year - 1, month, int(day), m.group("hms"))
        rest = line[m.end() :]
        um = _UPTIME_RE.match(rest.lstrip())
        up = float(um.group("up")) if um else None
        return _Line(rest, ts, up)
    cut = line.find("NVRM")
    m = _ISO_RE.search(line[:cut] if cut > 0 else line[:64])
    if m:
        return _Line(line, _iso_ts(m.group("iso")), None)
    return _Line(line, None, None)


# --- the parser -------------------------------------------------------------------------------------------


def _to_int(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)


def _xid_event(m: re.Match, line: _Line) -> XidEvent:
    xid = int(m.group("xid"))
    rest = m.group("rest").strip()
    pid = process = None
    pm = _PID_RE.match(rest)
    if pm:
        pid = _to_int(pm.group("pid"))
        name = pm.group("name")
        process = None if name in (None, "", "<unknown>") else name
        rest = rest[pm.end() :]
    mig = m.group("mig") or ""
    gi, ci = _MIG_GI.search(mig), _MIG_CI.search(mig)
    return XidEvent(
        ts=line.ts,
        xid=xid,
        pci=normalize_pci(m.group("pci")),
        pid=pid,
        process=process,
        message=rest.strip(),
        kind=KIND_XID,
        severity=str(severity_of(xid)),
        uptime=line.uptime,
        gpu_instance=int(gi.group(1)) if gi else None,
        compute_instance=int(ci.group(1)) if ci else None,
    )


def _fallen_event(pci: str | None, message: str, line: _Line) -> XidEvent:
    return XidEvent(
        ts=line.ts,
        xid=None,
        pci=normalize_pci(pci),
        pid=None,
        process=None,
        message=message.strip(),
        kind=KIND_FALLEN_OFF_BUS,
        severity=str(severity_of(None)),
        uptime=line.uptime,
    )


class KernelLogParser:
    """Feed kernel-log lines one at a time; get the Xid events they complete.

    `boot_time` turns since-boot stamps (dmesg, /dev/kmsg) into wall-clock time; `now` anchors year-less
    syslog stamps. Both default to this machine's values, which is right for live sources.
    """

    _PENDING_LINES = 3  # the three-line form: "The NVIDIA GPU <pci>" then two more lines

    def __init__(self, boot_time: float | None = None, now: float | None = None, source: str = "log"):
        self.boot_time = boot_time
        self.now = now if now is not None else time.time()
        self.source = source
        self._pending: tuple[str, _Line, int, list[str]] | None = None

    def feed(self, raw: str) -> list[XidEvent]:
        try:
            return self._feed(raw)
        except Exception:  # never let one strange line stop a watcher
            self._pending = None
            return []

    def _feed(self, raw: str) -> list[XidEvent]:
        raw = raw.rstrip("\r\n")
        if not raw or raw[0] == " " and _KMSG_RE.match(raw) is None and "NVRM" not in raw:
            return []  # blank, or a /dev/kmsg " KEY=value" continuation
        if "NVRM" not in raw and "fallen off the bus" not in raw.lower():
            self._age_pending()
            return []
        line = _split_prefix(raw.strip() if raw[0] == " " else raw, self.boot_time, self.now)
        msg = line.message
        out: list[XidEvent] = []
        m = _XID_RE.search(msg)
        if m:
            self._pending = None
            ev = _xid_event(m, line)
            ev.source = self.source
            return [ev]
        head = _NVIDIA_GPU_HEAD.search(msg)
        if head and not _FALLEN_RE.search(msg):
            self._pending = (
                head.group("pci"),
                line,
                self._PENDING_LINES - 1,
                [msg[msg.index("NVRM:") :].strip()],
            )
            return []
        if _FALLEN_RE.search(msg) and "NVRM" in msg:
            text = msg[msg.index("NVRM:") :].strip() if "NVRM:" in msg else msg.strip()
            gm = _GPU_PCI_RE.search(msg)
            if gm:
                pci, first, parts = gm.group("pci"), line, [text]
            elif self._pending is not None:
                pci, first, _, parts = self._pending
                parts = [*parts, text]
            else:
                pci, first, parts = None, line, [text]
            self._pending = None
            ev = _fallen_event(pci, " ".join(p.removeprefix("NVRM: ").strip() for p in parts), first)
            ev.source = self.source
            out.append(ev)
            return out
        if self._pending is not None and "NVRM:" in msg:
            pci, first, left, parts = self._pending
            if left <= 1:
                self._pending = None
            else:
                self._pending = (pci, first, left - 1, [*parts, msg[msg.index("NVRM:") :].strip()])
            return []
        self._age_pending()
        return []

    def _age_pending(self) -> None:
        if self._pending is not None:
            pci, first, left, parts = self._pending
            self._pending = None if left <= 1 else (pci, first, left - 1, parts)

    def flush(self) -> list[XidEvent]:
        """End of input: an unfinished three-line message is not an event."""
        self._pending = None
        return []


def parse_lines(
    lines: Iterable[str], boot_time: float | None = None, now: float | None = None, source: str = "log"
) -> Iterator[XidEvent]:
    parser = KernelLogParser(boot_time=boot_time, now=now, source=source)
    for line in lines:
        yield from parser.feed(line)
    yield from parser.flush()


def parse_kernel_log(
    text: str, boot_time: float | None = None, now: float | None = None, source: str = "log"
) -> list[XidEvent]:
    """All Xid events in a saved kernel log (any of the supported forms, mixed is fine)."""
    if not isinstance(text, str):
        return []
    return list(parse_lines(text.splitlines(), boot_time=boot_time, now=now, source=source))


def since(events: Iterable[XidEvent], cutoff: float, boot_time: float | None = None) -> list[XidEvent]:
    """Events at or after `cutoff` (unix s); events with no wall-clock time are kept (we cannot rule them out)."""
    out = []
    for ev in events:
        ts = ev.ts
        if ts is None and ev.uptime is not None and boot_time is not None:
            ts = boot_time + ev.uptime
        if ts is None or ts >= cutoff:
            out.append(ev)
    return out


__all__ = [
    "KIND_FALLEN_OFF_BUS",
    "KIND_XID",
    "KernelLogParser",
    "XidEvent",
    "normalize_pci",
    "parse_kernel_log",
    "parse_lines",
    "since",
]
