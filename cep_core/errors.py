"""User-facing errors: the message says what went wrong and where (file, line, field), never a traceback."""

from __future__ import annotations

from pathlib import Path


class CepError(Exception):
    """An error the user can act on. The CLI prints its message and exits with `exit_code`."""

    exit_code = 2


class InputError(CepError):
    """Bad input: names the file and, where known, the line and field."""

    def __init__(
        self, message: str, path: str | Path | None = None, line: int | None = None, field: str | None = None
    ):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = self.path or ""
        if line is not None:
            where += f":{line}"
        if field:
            where = f"{where} (field {field!r})" if where else f"field {field!r}"
        super().__init__(f"{where}: {message}" if where else message)
