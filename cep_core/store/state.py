"""Where state lives: CEP_HOME, its run directories, and the state database `cep.db` with its migrations.

Each area adds its tables here as a numbered migration, so one schema history covers the database.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from cep_core.errors import InputError
from cep_core.store.db import Migrations, connect
from cep_core.store.private import private_dir

STATE_MIGRATIONS = Migrations("cep")


def default_home() -> Path:
    """CEP_HOME, else $XDG_DATA_HOME/cep, else ~/.local/share/cep."""
    if os.environ.get("CEP_HOME"):
        return Path(os.environ["CEP_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "cep"


def resolve_home(home: str | Path | None = None) -> Path:
    return Path(home).expanduser() if home else default_home()


def ensure_home(home: str | Path | None = None) -> Path:
    """Create the home (mode 0700) and its runs/ folder; return its path."""
    path = resolve_home(home)
    private_dir(path / "runs")
    return path


def runs_dir(home: str | Path | None = None) -> Path:
    return resolve_home(home) / "runs"


def state_db_path(home: str | Path | None = None) -> Path:
    return resolve_home(home) / "cep.db"


def traces_db_path(home: str | Path | None = None) -> Path:
    """CEP_TRACES_DB, else CEP_HOME/traces.db: the trace store is its own database."""
    if os.environ.get("CEP_TRACES_DB"):
        return Path(os.environ["CEP_TRACES_DB"]).expanduser()
    return resolve_home(home) / "traces.db"


class StateDbError(InputError):
    """cep.db exists but is not a SQLite database (or is damaged): the message names the file and the fix."""


def open_state(home: str | Path | None = None) -> sqlite_utils.Database:
    """Open `cep.db` under the home, creating and migrating it as needed."""
    path = ensure_home(home) / "cep.db"
    db = None
    try:
        db = connect(path)
        STATE_MIGRATIONS.apply(db)
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        if db is not None:
            db.conn.close()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
            raise
        if "unable to open" in str(exc) or "readonly" in str(exc):
            raise StateDbError(
                f"cannot open it ({exc}): check its permissions and its folder's", path=path
            ) from None
        raise StateDbError(
            f"not a usable SQLite database ({exc}). It holds the job registry, evaluations and GPU events; "
            f"runs under {path.parent / 'runs'} are files and are kept. Fix: move it aside "
            f"(mv {path} {path}.broken) and the next command creates a new one",
            path=path,
        ) from None
    return db


@STATE_MIGRATIONS
def m001_gpu_events(db: sqlite_utils.Database) -> None:
    """Xid / fallen-off-the-bus events seen by `cep gpu` (cep_core.gpu.store); `key` de-duplicates re-reads."""
    db["gpu_events"].create(
        {
            "id": int,
            "key": str,
            "ts": float,
            "uptime": float,
            "recorded_at": float,
            "xid": int,
            "pci": str,
            "pid": int,
            "process": str,
            "kind": str,
            "severity": str,
            "message": str,
            "source": str,
            "gpu_instance": int,
            "compute_instance": int,
        },
        pk="id",
        not_null={"key", "kind", "severity", "recorded_at"},
    )
    db["gpu_events"].create_index(["key"], unique=True)
    db["gpu_events"].create_index(["ts"])


@STATE_MIGRATIONS
def m002_jobs(db: sqlite_utils.Database) -> None:
    """Training and evaluation jobs (cep_core.jobs.registry) and every state transition with its reason."""
    db["jobs"].create(
        {
            "id": str,
            "kind": str,
            "name": str,
            "backend": str,
            "run_dir": str,
            "command": str,  # JSON list
            "spec": str,  # JSON: what a relaunch needs (gpus, env, Slurm options)
            "host": str,
            "pid": int,
            "start_time": float,  # the process's start time: a reused pid is never taken for the job
            "slurm_id": str,
            "state": str,
            "reason": str,
            "exit_code": int,
            "attempt": int,
            "resumes": str,  # the job this one resumes
            "resumed_by": str,  # the job that resumed this one
            "created": float,
            "started": float,
            "ended": float,
            "next_attempt_at": float,
        },
        pk="id",
        not_null={"kind", "backend", "run_dir", "state", "attempt", "created"},
    )
    db["jobs"].create_index(["state"])
    db["jobs"].create_index(["run_dir"])
    db["job_transitions"].create(
        {"id": int, "job_id": str, "ts": float, "from_state": str, "to_state": str, "reason": str},
        pk="id",
        foreign_keys=[("job_id", "jobs", "id")],
    )
    db["job_transitions"].create_index(["job_id", "ts"])


@STATE_MIGRATIONS
def m003_evaluations(db: sqlite_utils.Database) -> None:
    """Evaluations (cep_core.evaluation.store): where each one's files are, what was evaluated, and the headline
    figures per track so the console can list and compare them without opening results.json."""
    db["evaluations"].create(
        {
            "id": str,
            "run_dir": str,  # the job's own run directory
            "eval_dir": str,  # where predictions.jsonl, examples.jsonl and results.json are
            "training_run": str,  # the training run evaluated, when there is one
            "name": str,
            "created": float,
            "finished": float,
            "model": str,
            "adapter": str,
            "backend": str,
            "cep_variant": str,
            "cep_sha256": str,
            "data_spec": str,  # JSON: the sets, their sample sizes and seeds
            "state": str,  # running | completed | stopped | failed
            "error": str,
            "n": int,
            "format_compliance": float,
            "structured_n": int,
            "structured_f1": float,
            "structured_format_compliance": float,
            "toolcall_n": int,
            "toolcall_f1": float,
            "toolcall_format_compliance": float,
        },
        pk="id",
        not_null={"run_dir", "eval_dir", "created", "backend", "state"},
    )
    db["evaluations"].create_index(["created"])
    db["evaluations"].create_index(["training_run"])


@STATE_MIGRATIONS
def m004_evaluation_ablations(db: sqlite_utils.Database) -> None:
    """An ablation (cep_core.evaluation.ablation) is several evaluations of one model on the same examples:
    each row says which ablation it belongs to and which variant it is (base, base+cep, lora+cep)."""
    db["evaluations"].add_column("ablation", str)
    db["evaluations"].add_column("variant", str)
    db["evaluations"].create_index(["ablation"])
