"""Private files and folders: everything under a home is readable by its owner only (folders 0700, files 0600).

A home holds traces (prompts, tool results), datasets made from them, run configs and adapters, so nothing in it
is for other users. The mode is set explicitly after creation (`chmod`), so it does not depend on the umask of
whoever runs us: a library call inside a service started with umask 000 gets the same modes as a shell with 077.
Files that other libraries write (Trainer checkpoints, adapters, tokenizers) are covered by `restrict_umask()`,
which the `cep` and `cep-console` commands and every job process call first.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

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


def write_private(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write a whole file atomically (a temporary file renamed over it), mode 0600."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def private_tree(folder: str | Path) -> Path:
    """Make a folder another library wrote (a model saved by transformers) private: folders 0700, files 0600."""
    folder = Path(folder)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)
    folder.chmod(DIR_MODE)
    return folder
