"""Pre-flight checks: one shape for every check a launch runs (config, model, data, GPU, disk)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


_RANK = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True, slots=True)
class Check:
    """One check's verdict; `detail` is a line a user can act on (what is wrong and the fix)."""

    name: str
    status: Status
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d


def worst(statuses: list[Status] | list[Check]) -> Status:
    """The most severe status of a list (ok for an empty list)."""
    items = [s.status if isinstance(s, Check) else Status(s) for s in statuses]
    return max(items, key=_RANK.__getitem__, default=Status.OK)


def exit_code(status: Status) -> int:
    """0 for ok, 1 for warn, 2 for fail: the convention of `cep gpu status` and `cep … --check`."""
    return _RANK[Status(status)]
