"""Subcommands of `cep`, one module per area; each exposes `register(subparsers)`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rich.console import Console

from cep_core.formats.jsonish import strict_json


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    """Machine output: plain, strict JSON on stdout, no colour. A non-finite number (an infinity stored by an
    older version, a NaN from a division) is null: `Infinity` and `NaN` are not JSON and break its readers."""
    sys.stdout.write(strict_json(obj, indent=2) + "\n")


HOME_HELP = "state directory (default: $CEP_HOME, else ~/.local/share/cep)"


def add_home_option(parser: argparse.ArgumentParser) -> None:
    """`--home DIR` on a subcommand's parser (cep_core.cli adds it to every one)."""
    parser.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS, help=HOME_HELP)


def use_home(path: str) -> None:
    """Through the environment, so everything in this process and the jobs started from it see the same home."""
    os.environ["CEP_HOME"] = os.path.abspath(os.path.expanduser(path))


def quiet_library_progress() -> None:
    """No transformers progress bars ("Loading weights", "Writing model shards") under a command that shows its
    own status: they are noise between its lines, and on a pipe they are a wall of carriage returns. Without
    transformers (an install without the [ml] extra, scoring over an API) there is nothing to quiet."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return

    hf_logging.disable_progress_bar()
