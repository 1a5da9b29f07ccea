"""Reading a TOML config file with errors that name the file: one place for every config the CLI reads."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

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
