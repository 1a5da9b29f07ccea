"""Evaluations as the console and the CLI see them: rows in cep.db plus each evaluation's files.

The console's Evals screen is built on exactly these names: list_evaluations, load_results, worst_examples
(and EvalRecord). Nothing here imports anything heavy.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.store.state import open_state

RESULTS = "results.json"
EXAMPLES = "examples.jsonl"
PREDICTIONS = "predictions.jsonl"
TRACK_FIGURES = ("n", "f1", "format_compliance")


@dataclass(slots=True)
class EvalRecord:
    """One evaluation's row: what was evaluated, where its files are, and its headline figures."""

    id: str
    run_dir: str
    eval_dir: str
    created: float
    backend: str
    state: str
    training_run: str | None = None
    name: str | None = None
    finished: float | None = None
    model: str | None = None
    adapter: str | None = None
    cep_variant: str | None = None
    cep_sha256: str | None = None
    data_spec: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    n: int | None = None
    format_compliance: float | None = None
    structured_n: int | None = None
    structured_f1: float | None = None
    structured_format_compliance: float | None = None
    toolcall_n: int | None = None
    toolcall_f1: float | None = None
    toolcall_format_compliance: float | None = None
    ablation: str | None = None  # the ablation this evaluation is a variant of (cep_core.evaluation.ablation)
    variant: str | None = None

    @property
    def short_id(self) -> str:
        """The random tail of the id (`…-demo-preds-0e33` -> `0e33`): with the name, what a table shows."""
        return short_id(self.id)

    @property
    def headline(self) -> dict[str, float | None]:
        """The two figures the baselines are about."""
        return {"structured_f1": self.structured_f1, "toolcall_f1": self.toolcall_f1}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EvalRecord:
        values = dict(row)
        try:
            values["data_spec"] = json.loads(values.get("data_spec") or "[]")
        except ValueError:
            values["data_spec"] = []
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def headline_figures(results: dict[str, Any]) -> dict[str, Any]:
    """The cep.db columns of a results.json: per track n, F1 (macro) and format compliance; overall n and
    format compliance over every example."""
    out: dict[str, Any] = {}
    n_total = 0
    compliant = 0.0
    for track in ("structured", "toolcall"):
        figures = (results.get("tracks") or {}).get(track)
        if not figures:
            out.update({f"{track}_n": 0, f"{track}_f1": None, f"{track}_format_compliance": None})
            continue
        out[f"{track}_n"] = figures["n"]
        out[f"{track}_f1"] = figures["f1"]["macro"]
        out[f"{track}_format_compliance"] = figures["format_compliance"]
        n_total += figures["n"]
        compliant += figures["format_compliance"] * figures["n"]
    out["n"] = n_total
    out["format_compliance"] = compliant / n_total if n_total else None
    return out


def error_counts(results: dict[str, Any]) -> Counter[str]:
    """The error categories of a results.json summed over its tracks (each track's `errors` is scoring's
    count of category -> examples)."""
    out: Counter[str] = Counter()
    for figures in (results.get("tracks") or {}).values():
        errors = figures.get("errors") if isinstance(figures, dict) else None
        if isinstance(errors, dict):
            out.update({str(k): int(v) for k, v in errors.items() if isinstance(v, int)})
    return out


def record_start(record: EvalRecord, home: str | Path | None = None) -> None:
    row = record.to_dict()
    row["data_spec"] = json.dumps(record.data_spec, ensure_ascii=False)
    db = open_state(home)
    try:
        db["evaluations"].insert(row, pk="id", replace=True)
    finally:
        db.conn.close()


def record_end(
    eval_id: str,
    state: str,
    home: str | Path | None = None,
    results: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    update: dict[str, Any] = {"state": state, "finished": time.time()}
    if results is not None:
        update.update(headline_figures(results))
    if error:
        update["error"] = error
    db = open_state(home)
    try:
        db["evaluations"].update(eval_id, update)
    finally:
        db.conn.close()


# The newest job of an evaluation's run directory, when the jobs layer launched it.
_LIST_SQL = """
SELECT e.*,
  (SELECT j.state FROM jobs j WHERE j.run_dir = e.run_dir ORDER BY j.created DESC LIMIT 1) AS job_state,
  (SELECT j.reason FROM jobs j WHERE j.run_dir = e.run_dir ORDER BY j.created DESC LIMIT 1) AS job_reason
FROM evaluations e
ORDER BY e.created DESC, e.id DESC
"""
_ENDED_JOB_STATES = ("crashed", "failed", "stopped", "succeeded")


def list_evaluations(home: str | Path | None = None) -> list[EvalRecord]:
    """Every evaluation, newest first, with its headline figures.

    A row still `running` whose job has ended (killed, crashed: the job never got to record its end) shows the
    job's state and reason instead, so a dead evaluation never looks alive.
    """
    db = open_state(home)
    try:
        rows = list(db.query(_LIST_SQL))
    finally:
        db.conn.close()
    records = []
    for row in rows:
        record = EvalRecord.from_row(row)
        if record.state == "running" and row.get("job_state") in _ENDED_JOB_STATES:
            record.state = "crashed" if row["job_state"] == "succeeded" else row["job_state"]
            record.error = record.error or row.get("job_reason")
        records.append(record)
    return records


def short_id(eval_id: str) -> str:
    return eval_id.rsplit("-", 1)[-1]


def get_evaluation(eval_id: str, home: str | Path | None = None) -> EvalRecord:
    """One evaluation by id, by a unique prefix of it, by its short id (the id's last part, as tables show it)
    when unique, or by name (the newest of that name)."""
    records = list_evaluations(home)
    exact = [r for r in records if r.id == eval_id]
    if exact:
        return exact[0]
    matches = [r for r in records if r.id.startswith(eval_id)]
    if len(matches) == 1:
        return matches[0]
    by_short = [r for r in records if r.short_id == eval_id]
    if not matches and len(by_short) == 1:
        return by_short[0]
    named = [r for r in records if r.name == eval_id]
    if named:
        return named[0]  # the newest evaluation of that name
    if not matches:
        raise InputError(f"no evaluation {eval_id!r} (cep eval compare lists them)")
    raise InputError(
        f"{eval_id!r} matches {len(matches)} evaluations: {', '.join(r.id for r in matches[:5])}"
    )


def load_results(record: EvalRecord) -> dict[str, Any]:
    """The evaluation's results.json."""
    path = Path(record.eval_dir) / RESULTS
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"no results yet (the evaluation is {record.state})", path=path) from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable results: {exc}", path=path) from exc


def iter_examples(record: EvalRecord) -> list[dict[str, Any]]:
    """Lines of examples.jsonl that parse (a torn last line is skipped)."""
    path = Path(record.eval_dir) / EXAMPLES
    rows = []
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"no examples yet (the evaluation is {record.state})", path=path) from exc
    with handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def worst_examples(record: EvalRecord, track: str, n: int = 10) -> list[dict[str, Any]]:
    """The n examples of a track that went worst: lowest F1 first, then the most error categories.

    Each is {id, prompt, expected, output, errors, f1} (plus category and correct).
    """
    rows = [r for r in iter_examples(record) if r.get("track") == track]
    rows.sort(key=lambda r: (float(r.get("f1", 0.0)), -len(r.get("errors") or ()), str(r.get("id"))))
    return [
        {
            "id": r.get("id"),
            "prompt": r.get("prompt") or [],
            "expected": r.get("expected"),
            "output": r.get("output"),
            "errors": r.get("errors") or [],
            "f1": r.get("f1", 0.0),
            "category": r.get("category"),
            "correct": r.get("correct", False),
        }
        for r in rows[: max(n, 0)]
    ]
