"""The evaluations side of the console: records from cep_core.evaluation.store with their headline figures
beside both baselines (cep_core.scoring.baselines), error categories, worst examples and side-by-side comparison.

Records may be mappings or objects; `value(record, name)` reads either, so the screen depends only on the
store's documented names: list_evaluations(home), load_results(record), worst_examples(record, track, n).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.scoring.baselines import TRACK_OF_METRIC

HEADLINES = ("structured_f1", "toolcall_f1", "format_compliance")


def value(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def record_id(record: Any) -> str:
    for name in ("id", "eval_id", "name"):
        v = value(record, name)
        if v:
            return str(v)
    path = value(record, "path") or value(record, "dir")
    return Path(str(path)).name if path else "?"


@dataclass(slots=True)
class EvalRow:
    record: Any
    id: str
    name: str
    model: str
    adapter: str
    cep_variant: str
    n: Any
    figures: dict[str, Any]
    errors: Counter[str] = field(default_factory=Counter)
    state: str = ""  # running, completed, stopped, failed, crashed
    ablation: str = ""  # the ablation this evaluation is a variant of (cep eval ablation), else ""

    def matches_run(self, run_name: str) -> bool:
        hay = " ".join(
            str(value(self.record, k) or "") for k in ("training_run", "run_dir", "eval_dir", "adapter")
        )
        return run_name in hay


@dataclass(slots=True)
class EvalsState:
    available: bool
    message: str = ""
    rows: list[EvalRow] = field(default_factory=list)


def prompt_text(prompt: Any) -> str:
    """The user's request of a prompt (a chat message list shows its last user message)."""
    if isinstance(prompt, list):
        users = [m.get("content", "") for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
        if users:
            return str(users[-1])
    return str(prompt)


def _store() -> Any:
    from cep_core.evaluation import store

    return store


def load_evaluations(home: Path) -> EvalsState:
    try:
        store = _store()
    except ImportError as exc:
        return EvalsState(
            False,
            f"The evaluation store is not available in this installation ({exc}). "
            "Evaluations appear here once `cep_core.evaluation` is installed.",
        )
    try:
        records = list(store.list_evaluations(home))
    except Exception as exc:  # noqa: BLE001 — a broken results file is shown, not raised
        return EvalsState(False, f"could not list the evaluations under {home}: {exc}")
    rows = []
    for rec in records:
        try:
            results = store.load_results(rec)
        except Exception:  # noqa: BLE001 — one unreadable evaluation must not hide the others
            results = {}
        rows.append(
            EvalRow(
                record=rec,
                id=record_id(rec),
                name=str(value(rec, "name") or record_id(rec)),
                model=str(value(rec, "model") or "-"),
                adapter=str(value(rec, "adapter") or "-"),
                cep_variant=str(value(rec, "cep_variant") or "-"),
                n=value(rec, "n"),
                figures={h: value(rec, h) for h in HEADLINES},
                errors=store.error_counts(results),
                state=str(value(rec, "state") or ""),
                ablation=str(value(rec, "ablation") or ""),
            )
        )
    if not rows:
        return EvalsState(
            True,
            f"No evaluations under {home} yet. Evaluate a run with "
            "`cep eval CONFIG.toml` (docs/console.md shows one); it appears here.",
        )
    return EvalsState(True, "", rows)


def worst(row: EvalRow, n: int = 5) -> dict[str, list[dict[str, Any]]]:
    """The worst examples of each track the evaluation has."""
    store = _store()
    out: dict[str, list[dict[str, Any]]] = {}
    for metric, track in TRACK_OF_METRIC.items():
        if row.figures.get(metric) is None:
            continue
        try:
            out[track] = list(store.worst_examples(row.record, track, n))
        except Exception as exc:  # noqa: BLE001
            out[track] = [
                {
                    "id": "-",
                    "prompt": "",
                    "expected": "",
                    "output": "",
                    "errors": [f"unreadable: {exc}"],
                    "f1": None,
                }
            ]
    return out


def ablation_of(row: EvalRow, rows: list[EvalRow]) -> Any:
    """The ablation (cep_core.evaluation.ablation.Ablation) the row is a variant of, from its sibling rows; None
    for an evaluation that is not part of one."""
    if not row.ablation:
        return None
    from cep_core.evaluation.ablation import summarize

    return summarize([r.record for r in rows if r.ablation == row.ablation])
