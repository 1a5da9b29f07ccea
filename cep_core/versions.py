"""What produced a result: the versions of cep and of the ML stack, a schema version, and ISO time stamps.

Read from the installed distributions' metadata, so recording them never imports torch or transformers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import platform
from importlib import metadata
from typing import Any

from cep_core import __version__

# The layout of results.json. 1: the files written before the version was recorded; 2: adds schema_version,
# versions, created_at and finished_at (ISO 8601, UTC) beside the unix `created` and `finished`.
RESULTS_SCHEMA_VERSION = 2
PACKAGES = ("torch", "transformers", "peft", "datasets", "accelerate", "bfcl-eval")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """{"cep": …, "python": …, and each package: its installed version, or None when it is not installed}."""
    out: dict[str, str | None] = {"cep": __version__, "python": platform.python_version()}
    for name in packages:
        out[name] = None
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def iso_time(ts: float) -> str:
    """Unix seconds as ISO 8601 in UTC, to the second: 2026-11-25T20:15:03Z."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance(created: float, finished: float) -> dict[str, Any]:
    """The fields every results.json carries about how and when it was made."""
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "versions": package_versions(),
        "created_at": iso_time(created),
        "finished_at": iso_time(finished),
    }
