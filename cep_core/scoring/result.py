"""One example's score and the precision/recall/F1 arithmetic every track shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cep_core.formats.taxonomy import FORMAT_ERRORS
from cep_core.formats.toolcalls import ToolCall


@dataclass(slots=True)
class ExampleScore:
    """One example's verdict: what examples.jsonl holds, plus the counts the aggregate needs."""

    id: str
    category: str
    correct: bool
    f1: float
    precision: float
    recall: float
    errors: list[str]
    format_ok: bool
    calls: list[ToolCall] = field(default_factory=list)
    value: Any = None  # structured track: the JSON recovered
    matched: int = 0
    predicted: int = 0
    expected: int = 0
    arg_matched: int = 0
    arg_predicted: int = 0
    arg_expected: int = 0
    missing: bool = False  # no prediction was given for this example

    @property
    def argument_f1(self) -> float:
        return f1_score(*precision_recall(self.arg_matched, self.arg_predicted, self.arg_expected))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "category": self.category,
            "correct": self.correct,
            "f1": round(self.f1, 6),
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "errors": self.errors,
            "format_ok": self.format_ok,
        }
        if self.value is not None:
            out["value"] = self.value
        out["calls"] = [c.to_dict() for c in self.calls]
        if self.missing:
            out["missing_prediction"] = True
        return out


def precision_recall(matched: int, predicted: int, expected: int) -> tuple[float, float]:
    precision = matched / predicted if predicted else (1.0 if expected == 0 else 0.0)
    recall = matched / expected if expected else (1.0 if predicted == 0 else 0.0)
    return precision, recall


def f1_score(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def is_format_error(category: str) -> bool:
    return category in _FORMAT_VALUES


_FORMAT_VALUES = frozenset(str(e) for e in FORMAT_ERRORS)
