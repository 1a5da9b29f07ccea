"""A run directory: its files, its id, where it lives under the home, and the job's stdout.log.

Files are the interface between a job and everything else (DESIGN.md): the training and evaluation jobs write
a run directory, and the CLI, the jobs layer and the console read it. Standard library only: the console
imports it.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cep_core.errors import InputError
from cep_core.store.private import open_private, private_dir
from cep_core.store.state import runs_dir

RUN_TOML = "run.toml"
PROGRESS = "progress.jsonl"
STDOUT_LOG = "stdout.log"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
METADATA = "metadata.json"
EVALS = "evals"
TINY_BASE = "tiny-base"  # builtin:tiny only: the base model and tokenizer the adapter was trained on


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class RunPaths:
    """Where each file of one run directory lives."""

    root: Path

    @property
    def run_toml(self) -> Path:
        return self.root / RUN_TOML

    @property
    def progress(self) -> Path:
        return self.root / PROGRESS

    @property
    def stdout_log(self) -> Path:
        return self.root / STDOUT_LOG

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def adapter(self) -> Path:
        return self.root / ADAPTER

    @property
    def metadata(self) -> Path:
        return self.root / METADATA

    @property
    def evals(self) -> Path:
        return self.root / EVALS

    @property
    def tiny_base(self) -> Path:
        return self.root / TINY_BASE

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"checkpoint-{step}"


def new_run_id(name: str = "run", now: float | None = None) -> str:
    """A time-ordered, readable id: `20261125-143012-demo-ab12` (sorting ids sorts runs by start time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    slug = _UNSAFE_NAME.sub("-", name).strip("-.").lower()[:40] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


def create_run_dir(name: str, home: str | Path | None = None) -> RunPaths:
    """A fresh run directory under CEP_HOME/runs (mode 0700)."""
    base = private_dir(runs_dir(home))
    while True:
        path = base / new_run_id(name)
        try:
            private_dir(path, exist_ok=False)
        except FileExistsError:
            continue
        return RunPaths(path)


def find_run(ref: str, home: str | Path | None = None) -> RunPaths:
    """A training run by path, id, or unique id prefix."""
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "run.toml").is_file():
        return RunPaths(path.resolve())
    candidate = runs_dir(home) / ref
    if candidate.is_dir():
        return RunPaths(candidate.resolve())
    matches = [p for p in list_runs(home) if p.name.startswith(ref)]
    if len(matches) == 1:
        return RunPaths(matches[0].resolve())
    if matches:
        raise InputError(f"run {ref!r} is ambiguous: {', '.join(p.name for p in matches[:5])}", field="run")
    raise InputError(f"no training run {ref!r} under {runs_dir(home)}", field="run")


def list_runs(home: str | Path | None = None) -> list[Path]:
    """Run directories under CEP_HOME/runs, oldest first (run ids sort by time)."""
    base = runs_dir(home)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir())


def log_output_to(path: str | Path) -> None:
    """Send everything this process and its native libraries print to `path` (appended across resumes):
    a job's stdout.log. File descriptors 1 and 2 are replaced, so C-level output lands there too."""
    fd = open_private(path)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
