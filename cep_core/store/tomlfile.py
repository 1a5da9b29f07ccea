"""TOML config files, one place for every config the CLI reads: reading with errors that name the file,
building typed dataclasses from their tables (errors name the field), and writing a config back.

Training and evaluation configs are dataclasses; `build` checks every key and value against the type hints
(unknown keys, wrong types, non-finite numbers) so each config module only adds the checks of its own values.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any

import tomli_w

from cep_core.errors import InputError


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path).expanduser()
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("no such config file", path=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read config: {exc.strerror or exc}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise InputError("the config is not UTF-8 text", path=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", path=path) from exc


def build(
    cls: type,
    raw: Any,
    path: str | Path | None,
    prefix: str = "",
    *,
    bool_as_string: Collection[str] = (),
) -> Any:
    """`cls` (a dataclass) from a TOML table. Nested dataclasses are tables, a list of dataclasses is an
    array of tables (`[[sets]]`; one table is taken as a list of one), a list of str also takes one string.
    Fields named in `bool_as_string` are strings that also accept true/false (`bf16 = true`)."""
    if not isinstance(raw, dict):
        raise InputError("expected a table", path=path, field=prefix.rstrip(".") or None)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = prefix + key
        if key not in known:
            raise InputError(f"unknown setting (known: {', '.join(sorted(known))})", path=path, field=name)
        hint = hints[key]
        item = (typing.get_args(hint) or (None,))[0] if typing.get_origin(hint) is list else None
        if dataclasses.is_dataclass(hint):
            values[key] = build(hint, value, path, name + ".", bool_as_string=bool_as_string)
        elif item is not None and dataclasses.is_dataclass(item):
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list):
                raise InputError(f"expected a list of tables ([[{key}]])", path=path, field=name)
            values[key] = [
                build(item, v, path, f"{name}[{i}].", bool_as_string=bool_as_string)
                for i, v in enumerate(value)
            ]
        else:
            values[key] = coerce(hint, value, path, name, bool_as_string=bool_as_string)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in values:
            raise InputError("missing setting (it has no default)", path=path, field=prefix + f.name)
    return cls(**values)


def coerce(
    hint: Any, value: Any, path: str | Path | None, name: str, *, bool_as_string: Collection[str] = ()
) -> Any:
    """One TOML value checked against a scalar type hint (or a list of them); InputError names the field."""
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if item is str and isinstance(value, str):
            value = [value]  # target_modules = "all-linear", sources = "file.jsonl"
        if not isinstance(value, list):
            raise InputError(f"expected a list of {item.__name__}", path=path, field=name)
        return [coerce(item, v, path, name) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"expected true or false, got {value!r}", path=path, field=name)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"expected an integer, got {value!r}", path=path, field=name)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"expected a number, got {value!r}", path=path, field=name)
        return float(value)
    if hint is str:
        if isinstance(value, bool) and name.rsplit(".", 1)[-1] in bool_as_string:
            return "true" if value else "false"
        if not isinstance(value, str):
            raise InputError(f"expected a string, got {value!r}", path=path, field=name)
        return value
    raise InputError(f"unsupported setting type {hint}", path=path, field=name)


def dumps(data: dict[str, Any]) -> str:
    """A config dict (dataclasses.asdict) as TOML: top-level values, then tables, then arrays of tables.
    tomli_w, not hand-made quoting: it escapes what TOML forbids raw in a string (DEL, other control
    characters) and never writes a JSON-only escape such as a surrogate pair."""
    return tomli_w.dumps(data)


def toml_value(value: str | int | float | bool) -> str:
    """One value as TOML source, for filling a template: a string cannot break out of its quotes, even in a
    comment line (newlines are escaped)."""
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")
