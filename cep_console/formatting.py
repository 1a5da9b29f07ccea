"""How figures read on screen: one place for units, percentages, durations and bars (no widgets here)."""

from __future__ import annotations

import json
import time
from typing import Any

BAR_FULL = "█"
BAR_EMPTY = "░"


def bar(fraction: float | None, width: int) -> str:
    """A text bar of `width` cells for a fraction in [0, 1] (empty when unknown)."""
    if fraction is None:
        return BAR_EMPTY * width
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return BAR_FULL * filled + BAR_EMPTY * (width - filled)


def level(fraction: float | None, warn: float = 0.85, fail: float = 0.95) -> str:
    """ok | warn | fail for a fraction against two limits (used to colour bars)."""
    if fraction is None:
        return "na"
    return "fail" if fraction >= fail else "warn" if fraction >= warn else "ok"


def gib(n: Any) -> str:
    return f"{n / 1024**3:.0f}G" if isinstance(n, int | float) and not isinstance(n, bool) else "n/a"


def num(v: Any, fmt: str = "{:.0f}", na: str = "n/a") -> str:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return fmt.format(v)
    return na


def duration(seconds: Any) -> str:
    """ETA-style: 45s, 12m05s, 3h20m; '-' when unknown."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def when(ts: Any, uptime: Any = None) -> str:
    """A local wall-clock time, or the since-boot offset a dmesg line gave, or '?'."""
    if isinstance(ts, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    if isinstance(uptime, int | float):
        return f"boot+{uptime:.1f}s"
    return "?"


def pct(v: Any) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, int | float) and not isinstance(v, bool) else "-"


SPARK_CHARS = "▁▂▃▄▅▆▇█"


def spark(values: list[float], width: int, lo: float = 0.0, hi: float = 100.0) -> str:
    """The last `width` values as a one-line sparkline on a fixed scale (so 63 C and 65 C look alike)."""
    values = values[-width:]
    span = (hi - lo) or 1.0
    out = []
    for v in values:
        i = int((min(max(v, lo), hi) - lo) / span * (len(SPARK_CHARS) - 1) + 0.5)
        out.append(SPARK_CHARS[i])
    return "".join(out).rjust(width)


def clip(text: str, width: int) -> str:
    """One line of at most `width` cells, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def as_json(value: Any) -> str:
    """A value as a user reads it: text as it is, anything else as JSON (never a Python repr: `'a': True`)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
