"""Subcommands of `cep`, one module per area; each exposes `register(subparsers)`."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from cep_core.jsonish import finite


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    """Machine output: plain, strict JSON on stdout, no colour. A non-finite number (an infinity stored by an
    older version, a NaN from a division) is null: `Infinity` and `NaN` are not JSON and break its readers."""
    sys.stdout.write(
        json.dumps(finite(obj), indent=2, ensure_ascii=False, default=str, allow_nan=False) + "\n"
    )
