"""Who owns a GPU process: user and command line through psutil, cached so a 1 s refresh stays cheap."""

from __future__ import annotations

import psutil


class ProcessDescriber:
    """pid -> (user, command line). Cached by (pid, create_time) so a reused pid is not mislabelled."""

    def __init__(self, max_entries: int = 512):
        self._cache: dict[int, tuple[float, str | None, str | None]] = {}
        self._max = max_entries

    def describe(self, pid: int) -> tuple[str | None, str | None]:
        try:
            proc = psutil.Process(pid)
            created = proc.create_time()
        except (psutil.Error, ValueError, OverflowError):
            self._cache.pop(pid, None)
            return None, None  # gone, or in another pid namespace (containers)
        hit = self._cache.get(pid)
        if hit is not None and hit[0] == created:
            return hit[1], hit[2]
        user = command = None
        try:
            with proc.oneshot():
                try:
                    user = proc.username()
                except (psutil.Error, KeyError):
                    user = None
                try:
                    command = " ".join(proc.cmdline()) or proc.name()
                except psutil.Error:
                    command = None
        except psutil.Error:
            pass
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[pid] = (created, user, command)
        return user, command
