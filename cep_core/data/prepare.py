"""Dataset preparation: load every source, convert rows to messages, apply the CEP, count what was skipped,
and split train/holdout deterministically by a hash of the row id."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cep_core.data.convert import SkipRow, bfcl_to_messages, bfcl_to_structured_messages, row_to_messages
from cep_core.data.sources import RawRow, is_malformed, iter_rows
from cep_core.prompts.prefix import Cep, apply_cep


@dataclass(slots=True)
class Example:
    id: str
    messages: list[dict[str, Any]]
    source: str


@dataclass(slots=True)
class Prepared:
    train: list[Example] = field(default_factory=list)
    holdout: list[Example] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    @property
    def fingerprint(self) -> str:
        """sha256 over the prepared examples (ids and messages, both splits): same data, same fingerprint."""
        digest = hashlib.sha256()
        for ex in (*self.train, *self.holdout):
            digest.update(json.dumps([ex.id, ex.messages], sort_keys=True, ensure_ascii=False).encode())
        return digest.hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "skipped": dict(sorted(self.skipped.items())),
        }


def is_holdout(row_id: str, fraction: float, seed: int = 0) -> bool:
    """True for the stable `fraction` of ids whose hash falls below it (independent of row order)."""
    if fraction <= 0:
        return False
    value = int.from_bytes(hashlib.sha256(f"{seed}:{row_id}".encode()).digest()[:8], "big") / 2**64
    return value < fraction


def row_id(raw: RawRow) -> str:
    data = raw.data
    if raw.kind == "bfcl":
        return str(data.id)
    if raw.kind == "bfcl-json":
        return f"json:{data.id}"  # the evaluation's id for the same entry on the structured track
    if isinstance(data, dict) and data.get("id") not in (None, ""):
        return str(data["id"])
    blob = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


_CAP = re.compile(r"^(?P<spec>.+?)\[:(?P<n>\d+)\]$")


def split_cap(spec: str) -> tuple[str, int | None]:
    """`SPEC[:N]` -> (SPEC, N); a spec without a cap -> (spec, None)."""
    match = _CAP.match(spec.strip())
    if match is None:
        return spec, None
    return match.group("spec"), int(match.group("n"))


def split_key(raw: RawRow, rid: str) -> str:
    """What the train/holdout hash is taken of: the row id, except that a BFCL entry is held out (or not) on
    both tracks together — the evaluation splits its structured set by the entry's own id."""
    if raw.kind == "bfcl-json":
        return str(raw.data.id)
    return rid


def convert(raw: RawRow, cep: Cep | None, tool_format: str) -> list[dict[str, Any]]:
    if is_malformed(raw):
        raise SkipRow("malformed_json", f"{raw.source}:{raw.line}")
    if raw.kind == "bfcl":
        messages = bfcl_to_messages(raw.data, tool_format)
    elif raw.kind == "bfcl-json":
        messages = bfcl_to_structured_messages(raw.data)
    elif isinstance(raw.data, dict):
        messages = row_to_messages(raw.data, tool_format)
    else:
        raise SkipRow("not_an_object", f"{raw.source}:{raw.line}")
    return apply_cep(messages, cep)


def prepare(
    sources: list[str],
    *,
    cep: Cep | None,
    tool_format: str = "target",
    holdout_fraction: float = 0.1,
    seed: int = 0,
    max_rows: int = 0,
    split: str = "train",
    config_name: str | None = None,
) -> Prepared:
    """Every usable row of `sources`, converted and split; rows that cannot be used are counted by reason.

    Duplicate ids (the same row in two sources) are kept once. `max_rows` (0: all) caps usable rows; a source
    written `SPEC[:N]` gives at most its first N training rows (the mix of a small run: e.g. a few irrelevance
    rows beside many calls, so that "no call" does not become the easy answer to everything).
    """
    out = Prepared()
    seen: set[str] = set()
    for written in sources:
        spec, cap = split_cap(written)
        taken = 0
        for raw in iter_rows(spec, split=split, config_name=config_name):
            if cap is not None and taken >= cap:
                break
            out.rows += 1
            rid = row_id(raw) if not is_malformed(raw) else f"{raw.source}:{raw.line}"
            if rid in seen:
                out.skipped["duplicate_id"] += 1
                continue
            seen.add(rid)
            try:
                messages = convert(raw, cep, tool_format)
            except SkipRow as skip:
                out.skipped[skip.reason] += 1
                continue
            example = Example(rid, messages, raw.source)
            held = is_holdout(split_key(raw, rid), holdout_fraction, seed)
            (out.holdout if held else out.train).append(example)
            taken += not held
            if max_rows and len(out.train) + len(out.holdout) >= max_rows:
                return out
    return out
