"""Saved kernel logs as a user has them: plain text, rotated and compressed (`kern.log.2.gz`, `.xz`, `.bz2`),
or journald's own files (`system@….journal`, `system.journal~`), for `cep gpu xid --file`.

The format is read from the file's first bytes, not its name. Before this, a gzip-compressed `kern.log.1.gz`
was decoded as text: no line matched and a fatal Xid 79 in it was reported as "no events". A format that
cannot be read here is refused with the command that makes it readable, never parsed as noise.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import subprocess
import zlib
from pathlib import Path

from cep_core.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
JOURNAL_MAGIC = b"LPKSHHRH"
JOURNALCTL_TIMEOUT_S = 120


def log_text(data: bytes, path: str | Path, journalctl: str = "journalctl") -> str:
    """The text of a saved kernel log whose bytes are `data` (read from `path`, named in errors)."""
    try:
        if data.startswith(GZIP_MAGIC):
            data = gzip.decompress(data)
        elif data.startswith(XZ_MAGIC):
            data = lzma.decompress(data)
        elif data.startswith(BZIP2_MAGIC):
            data = bz2.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        raise InputError(
            f"a compressed log that cannot be decompressed ({exc}); is it complete? "
            "(a rotation still being written is cut short)",
            path=path,
        ) from None
    if data.startswith(ZSTD_MAGIC):
        raise InputError(
            f"compressed with zstd, which is not read here: decompress it first (zstd -d {path}) and pass the result",
            path=path,
        )
    if data.startswith(JOURNAL_MAGIC):
        return journal_text(Path(path), journalctl)
    return data.decode("utf-8", "replace")


def read_log_file(path: str | Path, journalctl: str = "journalctl") -> str:
    """The text of the saved kernel log at `path` (InputError names the file when it cannot be read)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("kernel log not found", path) from None
    except IsADirectoryError:
        raise InputError("a folder, not a kernel log (give one of its files)", path) from None
    except OSError as exc:
        raise InputError(f"cannot read kernel log: {exc.strerror or exc}", path) from None
    return log_text(data, path, journalctl)


def journal_text(path: Path, journalctl: str = "journalctl") -> str:
    """A journald file's kernel messages as `journalctl -o json` lines (exact times), through journalctl."""
    if shutil.which(journalctl) is None:
        raise InputError(
            "a systemd journal file, which needs journalctl to read (install systemd), or export its kernel "
            f"messages where journalctl exists: journalctl --file {path} -k -o short-iso > kern.log",
            path=path,
        )
    try:
        proc = subprocess.run(
            [journalctl, "--file", str(path), "-k", "-o", "json", "--no-pager", "-q"],
            capture_output=True,
            timeout=JOURNALCTL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"journalctl could not read this journal file: {exc}", path=path) from None
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(
            f"journalctl could not read this journal file: {why[-1] if why else f'exit {proc.returncode}'}",
            path=path,
        )
    return proc.stdout.decode("utf-8", "replace")
