"""Fork safety, in one place: a process that holds a tracer may fork (multiprocessing, a DataLoader worker).

SQLite's process-wide mutexes must not be inherited held, so every lock a thread holds around its SQLite calls
(a tracer's writes, a WAL checkpointer's thread) is taken before the fork and released after it, in the parent
and in the child, where per-process state (the checkpoint threads, which do not exist there) is then reset.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable


def hold_across_fork(
    locks: Callable[[], Iterable[threading.Lock]], in_child: Callable[[], None] | None = None
) -> None:
    """Take every lock `locks()` gives before each fork, release them after it in both processes; then run
    `in_child` in the child. Hooks registered later run their `before` first (os.register_at_fork)."""
    held: list[threading.Lock] = []

    def before() -> None:
        for lock in locks():
            lock.acquire()
            held.append(lock)

    def release() -> None:
        while held:
            held.pop().release()

    def after_in_child() -> None:
        release()
        if in_child is not None:
            in_child()

    os.register_at_fork(before=before, after_in_parent=release, after_in_child=after_in_child)
