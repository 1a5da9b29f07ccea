"""Private files and folders: everything under a home is readable by its owner only (folders 0700, files 0600).

A home holds traces (prompts, tool results), datasets made from them, run configs and adapters, so nothing in it
is for other users. The mode is set explicitly after creation (`chmod`), so it does not depend on the umask of
whoever runs us: a library call inside a service started with umask 000 gets the same modes as a shell with 077.
Files that other libraries write (Trainer checkpoints, adapters, tokenizers) are covered by `restrict_umask()`,
which the `cep` and `cep-console` commands and every job process call first.

Whole files are written atomically (`atomic_file`, and on it `write_private`, `write_json`, `write_jsonl`): a
temporary file beside the target, renamed over it only once complete, so a reader (the console, a resumed job)
never sees half a file, and a failure midway leaves the old content and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from cep_core.formats.jsonish import strict_json

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def restrict_umask() -> int:
    """Make files and folders this process (and its children) creates private; returns the previous umask."""
    return os.umask(UMASK)


def private_dir(path: str | Path, *, exist_ok: bool = True) -> Path:
    """Create `path` and any missing parents as 0700 folders (folders that exist are left as they are)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not missing and not exist_ok:
        raise FileExistsError(path)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:  # made meanwhile by another process
            if folder == path and not exist_ok:
                raise
            continue
        os.chmod(folder, DIR_MODE)
    return path


def open_private(path: str | Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """os.open with the file created 0600 (and its folder 0700); a file that existed keeps its mode."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags & ~(os.O_CREAT | os.O_EXCL))
    os.fchmod(fd, FILE_MODE)
    return fd


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A handle (mode "w": UTF-8 text, "wb": bytes) on a new 0600 file beside `path`, renamed over `path` when
    the block ends; if it raises, the temporary file is removed and `path` keeps what it held."""
    path = Path(path)
    private_dir(path.parent)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def write_private(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write a whole file atomically, mode 0600."""
    with atomic_file(path, "wb") as handle:
        handle.write(data.encode(encoding) if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """`obj` as one strict JSON document, atomically, mode 0600 (serialised first: a failure writes nothing)."""
    return write_private(path, strict_json(obj, indent=indent) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    """One strict JSON object a line, atomically, mode 0600 (`rows` may be a generator: it is streamed)."""
    with atomic_file(path) as handle:
        for row in rows:
            handle.write(strict_json(row) + "\n")
    return Path(path)


def private_tree(folder: str | Path) -> Path:
    """Make a folder another library wrote (a model saved by transformers) private: folders 0700, files 0600."""
    folder = Path(folder)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)
    folder.chmod(DIR_MODE)
    return folder
