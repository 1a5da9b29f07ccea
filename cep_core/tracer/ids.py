"""Time-ordered ids (ULID-like): 48 bits of milliseconds then 80 random bits, in Crockford base32.

Sorting ids sorts traces by capture time, so "newest first" and keyset paging (`id < before_id`) need no
extra column, and a time bound becomes an id bound. Within one process ids are strictly increasing even
inside one millisecond (the random part is incremented), so a page boundary never skips a row.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last: tuple[int, int] = (-1, 0)


def _fresh_after_fork() -> None:
    """A forked child does not continue the parent's sequence. Its lock guards memory only, not SQLite, so
    the child gets a fresh one instead of every fork waiting for it (tracer/forks.py holds the SQLite locks)."""
    global _lock, _last
    _lock = threading.Lock()  # another thread may have held it at the fork
    _last = (-1, 0)


os.register_at_fork(after_in_child=_fresh_after_fork)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(now: float | None = None) -> str:
    """A 26-character id that sorts after every id this process made before it."""
    global _last
    ms = int((time.time() if now is None else now) * 1000)
    with _lock:
        last_ms, last_rand = _last
        if ms <= last_ms and now is None:
            ms, rand = last_ms, last_rand + 1
            if rand >= 1 << _RANDOM_BITS:  # 2**80 ids in one millisecond: move to the next one
                ms, rand = ms + 1, int.from_bytes(os.urandom(10), "big") >> 1
        else:
            # The top bit stays clear so that incrementing within a millisecond cannot overflow in practice.
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        if now is None:
            _last = (ms, rand)
    return _encode(ms, 10) + _encode(rand, 16)


def id_floor(ts: float) -> str:
    """The smallest id a trace captured at unix time `ts` (or later) can have: `id >= id_floor(ts)`."""
    return _encode(max(0, int(ts * 1000)), 10) + "0" * 16


def id_time(trace_id: str) -> float:
    """The capture time (unix seconds) encoded in an id."""
    value = 0
    for ch in trace_id[:10].upper():
        value = value * 32 + _ALPHABET.index(ch)
    return value / 1000
