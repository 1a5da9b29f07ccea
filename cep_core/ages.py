"""Ages such as `30m`, `2h`, `7d`: how far back a `--since` or a console filter reaches.

One parser for the CLI and the console, so both accept the same words and the console can say back what
was typed (`since=2d`, not `since=172800s`). `parse_time` adds the absolute forms (unix seconds, ISO dates).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

from cep_core.errors import InputError

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_age(text: str) -> float | None:
    """Seconds in an age such as '90m' or '2.5h'; None when the text is not one."""
    match = _AGE.match(text)
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)] if match else None


def format_age(seconds: float) -> str:
    """The largest unit that says it exactly: 172800 -> '2d', 5400 -> '90m', 7.5 -> '7.5s'."""
    for unit, size in sorted(UNIT_SECONDS.items(), key=lambda item: -item[1]):
        count = seconds / size
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds:g}s"


def parse_time(text: str | None, field: str, now: float | None = None) -> float | None:
    """Unix seconds, an ISO date or date-time (local time unless it names a zone), or an age ('90m', '2d').

    The one reading of a point in time for `--since`/`--until` and the console's `since=`; `field` is how the
    user wrote the term, so the error names it.
    """
    if text is None:
        return None
    now = time.time() if now is None else now
    age = parse_age(text)
    if age is not None:
        return now - age
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):  # 'nan' and 'inf' parse as floats but are no time
            return seconds
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise InputError(
            f"{field}: {text!r} is not a time: give unix seconds, an ISO date such as 2026-05-01, "
            "or an age such as 30m, 2h, 7d"
        ) from None
