"""Predictions files: `{"id": ..., "output": "<raw model text>"}` per line (BFCL's `result` is read too)."""

from __future__ import annotations

from pathlib import Path

from cep_core.data.bfcl import read_jsonl
from cep_core.errors import InputError


def load_predictions(path: str | Path, known_ids: set[str] | None = None) -> dict[str, str]:
    """id -> output. Unknown and duplicate ids and lines without a text output are errors naming the line."""
    path = Path(path)
    outputs: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, row in read_jsonl(path):
        if "id" not in row:
            raise InputError("a prediction needs an 'id'", path=path, line=lineno, field="id")
        pid = str(row["id"])
        if "output" in row:
            output, fld = row["output"], "output"
        elif "result" in row:
            output, fld = row["result"], "result"
        else:
            raise InputError(
                "a prediction needs an 'output' (the raw model text)", path=path, line=lineno, field="output"
            )
        if output is None:
            output = ""
        if not isinstance(output, str):
            raise InputError(
                f"'{fld}' must be the raw model text (a string), got {type(output).__name__}",
                path=path,
                line=lineno,
                field=fld,
            )
        if known_ids is not None and pid not in known_ids:
            raise InputError(
                f"unknown id {pid!r}: no example in the dataset has it", path=path, line=lineno, field="id"
            )
        if pid in outputs:
            raise InputError(
                f"duplicate id {pid!r} (first on line {lines[pid]})", path=path, line=lineno, field="id"
            )
        outputs[pid] = output
        lines[pid] = lineno
    return outputs
