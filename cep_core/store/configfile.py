"""The skeleton every config loader shares (training, evaluation): read the TOML file, build the config
dataclass from its tables, check its values, resolve its relative paths against the file's folder.

Every error is an InputError that names the file, and the line (invalid TOML) or the field (an unknown key, a
wrong type, a bad value), so a config module only says what its own values must be.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

from cep_core.errors import InputError
from cep_core.store.tomlfile import build, read_toml

C = TypeVar("C")
FieldError = Callable[[str, str], InputError]


def load_file(
    path: str | Path,
    from_dict: Callable[[dict[str, Any], Path], C],
    resolve: Callable[[C, Path], None],
) -> C:
    """The config in `path`: read, built and checked by `from_dict`, then its relative paths made absolute by
    `resolve` (given the file's folder), so the config means the same from any working directory."""
    path = Path(path).expanduser()
    config = from_dict(read_toml(path), path)
    resolve(config, path.parent)
    return config


def from_table(
    cls: type[C],
    raw: dict[str, Any],
    path: str | Path | None,
    check: Callable[[C, str | Path | None], None],
    *,
    bool_as_string: Collection[str] = (),
) -> C:
    """`cls` from a TOML table (every key and type checked; see tomlfile.build), then `check` on its values.
    `path` only names the source in errors: a form or a dict built in code has no file."""
    config = build(cls, raw, path, bool_as_string=bool_as_string)
    check(config, path)
    return config


def field_errors(path: str | Path | None) -> FieldError:
    """`bad(field, message)`: the InputError of one setting of the config at `path`, to raise from a check."""

    def bad(name: str, message: str) -> InputError:
        return InputError(message, path=path, field=name)

    return bad


def read_leniently(path: str | Path) -> dict[str, Any]:
    """The file's tables, or {} when it is missing, unreadable or not TOML: for what only shows a config (a
    run's name, its summary), where one broken run.toml must not break a listing."""
    try:
        return read_toml(path)
    except InputError:
        return {}
