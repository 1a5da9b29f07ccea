"""Where rows come from: local JSON/JSONL/Parquet files, BFCL files, a Hub dataset, or the built-in sets.

JSON Lines are read line by line so that one malformed line is skipped and counted (with its line number)
instead of failing the whole file; Parquet files and Hub datasets go through `datasets`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cep_core.data.bfcl import is_bfcl_file, load_bfcl
from cep_core.errors import InputError

PACKAGE_SAMPLE = Path(__file__).with_name("samples") / "hermes_sample.jsonl"
BUILTIN_SAMPLE = "builtin:sample"
BUILTIN_DEMO = "builtin:demo"


@dataclass(slots=True)
class RawRow:
    """One row as read, with where it came from (for ids and error messages)."""

    source: str
    line: int | None
    kind: str  # hermes | bfcl
    data: Any


def shared_data_dir() -> Path | None:
    """../shared/data beside the project checkout (or $CEP_SHARED_DATA), when it exists."""
    env = os.environ.get("CEP_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    return None


def resolve_source(spec: str) -> list[str]:
    """A source spec as concrete sources: builtin names expand, everything else passes through."""
    if spec == BUILTIN_SAMPLE:
        return [str(PACKAGE_SAMPLE)]
    if spec == BUILTIN_DEMO:
        # The real Hermes dataset-card rows when ../shared/data is present, and the packaged sample (360
        # Hermes-style rows over a dozen functions: what a randomly initialised tiny model can learn in a
        # minute; BFCL's 400+ distinct functions are listed as sources explicitly by those who want them).
        shared = shared_data_dir()
        hermes = shared / "hermes" / "card_examples.jsonl" if shared is not None else None
        if hermes is not None and hermes.is_file():
            return [str(hermes), str(PACKAGE_SAMPLE)]
        return [str(PACKAGE_SAMPLE)]
    return [spec]


def is_local(spec: str) -> bool:
    return (
        spec.startswith(("/", ".", "~"))
        or Path(spec).expanduser().exists()
        or Path(spec).suffix in (".json", ".jsonl", ".parquet")
    )


BFCL_PREFIX = "bfcl:"
BFCL_JSON_PREFIX = "bfcl-json:"


def bfcl_files(spec: str) -> list[Path]:
    """The BFCL question files of `bfcl:CAT,…` / `bfcl-json:CAT,…` (the evaluation's BFCL data folder)."""
    from cep_core.evaluation.sets import bfcl_files as files_of

    return files_of(spec.split(":", 1)[1])


def iter_rows(spec: str, split: str = "train", config_name: str | None = None) -> Iterator[RawRow]:
    """Rows of one source. Raises InputError when the source itself cannot be read.

    `bfcl:CAT,…` trains on BFCL entries as tool-call conversations (irrelevance: an answer without a call);
    `bfcl-json:CAT,…` on simple BFCL entries as structured-output tasks (the arguments as one JSON object),
    the same prompts the evaluation's `bfcl:` and `bfcl-json:` sets ask."""
    if spec.startswith(BFCL_JSON_PREFIX):
        for path in bfcl_files(spec):
            for entry in load_bfcl(path):
                yield RawRow(str(path), None, "bfcl-json", entry)
        return
    if spec.startswith(BFCL_PREFIX):
        for path in bfcl_files(spec):
            yield from _iter_local(path)
        return
    for source in resolve_source(spec):
        if is_local(source):
            yield from _iter_local(Path(source).expanduser())
        else:
            yield from _iter_hub(source, split, config_name)


def _iter_local(path: Path) -> Iterator[RawRow]:
    if not path.exists():
        raise InputError("no such dataset file", path=path)
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.suffix in (".json", ".jsonl", ".parquet"):
                yield from _iter_local(child)
        return
    if is_bfcl_file(path):
        for entry in load_bfcl(path):
            yield RawRow(str(path), None, "bfcl", entry)
        return
    if path.suffix == ".parquet":
        yield from _iter_datasets("parquet", {"data_files": str(path)}, str(path))
        return
    yield from _iter_json(path)


def _iter_json(path: Path) -> Iterator[RawRow]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read dataset file: {exc.strerror or exc}", path=path) from exc
    if data.lstrip().startswith(b"["):
        try:
            rows = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputError("not UTF-8 text; re-encode the file as UTF-8", path=path, line=line) from None
        except (ValueError, RecursionError) as exc:
            raise InputError(f"malformed JSON: {exc}", path=path) from None
        for index, row in enumerate(rows):
            yield RawRow(str(path), index + 1, "hermes", row)
        return
    # JSON Lines: a line that is not UTF-8 or not JSON is skipped and counted (malformed_json) like any other.
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            row = _MALFORMED
        yield RawRow(str(path), lineno, "hermes", row)


_MALFORMED = object()


def is_malformed(row: RawRow) -> bool:
    return row.data is _MALFORMED


def _iter_hub(name: str, split: str, config_name: str | None) -> Iterator[RawRow]:
    yield from _iter_datasets(name, {"name": config_name, "split": split}, name)


def _iter_datasets(path: str, kwargs: dict[str, Any], label: str) -> Iterator[RawRow]:
    import datasets

    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    kwargs.setdefault("split", "train")
    try:
        ds = datasets.load_dataset(path, **kwargs)
    except Exception as exc:  # datasets raises many types; the user needs the source named
        raise InputError(f"cannot load dataset: {type(exc).__name__}: {exc}", path=label) from exc
    for index, row in enumerate(ds):
        yield RawRow(label, index + 1, "hermes", row)
