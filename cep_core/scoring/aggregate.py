"""From per-example scores to results.json: the track's figures, error counts, categories and baselines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from cep_core.data.evalset import EvalExample
from cep_core.formats.toolcalls import CallFormat
from cep_core.scoring import baselines
from cep_core.scoring.result import ExampleScore, f1_score, precision_recall
from cep_core.scoring.structured import score_structured
from cep_core.scoring.toolcall import score_toolcall


def score_example(
    example: EvalExample,
    output: str | None,
    expected_format: CallFormat = CallFormat.TARGET,
    strict: bool = False,
) -> ExampleScore:
    missing = output is None
    text = output or ""
    if example.track == "structured":
        return score_structured(example, text, missing, strict)
    return score_toolcall(example, text, expected_format, missing, strict)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _strict_f1(track: str, score: ExampleScore) -> float:
    if score.format_ok:
        return score.f1
    return 1.0 if track == "toolcall" and score.expected == 0 else 0.0


def aggregate(track: str, scores: Iterable[ExampleScore]) -> dict[str, Any]:
    """results.json: the track's figures, error counts, per-category figures and the baseline deltas."""
    scores = list(scores)
    n = len(scores)
    micro_p, micro_r = precision_recall(
        sum(s.matched for s in scores), sum(s.predicted for s in scores), sum(s.expected for s in scores)
    )
    arg_p, arg_r = precision_recall(
        sum(s.arg_matched for s in scores),
        sum(s.arg_predicted for s in scores),
        sum(s.arg_expected for s in scores),
    )
    errors = Counter(e for s in scores for e in s.errors)
    f1_macro = _mean([s.f1 for s in scores])
    by_category: dict[str, dict[str, Any]] = {}
    for category in sorted({s.category for s in scores}):
        group = [s for s in scores if s.category == category]
        by_category[category] = {
            "n": len(group),
            "accuracy": _mean([float(s.correct) for s in group]),
            "f1": _mean([s.f1 for s in group]),
            "format_compliance": _mean([float(s.format_ok) for s in group]),
        }
    missing = [s.id for s in scores if s.missing]
    results: dict[str, Any] = {
        "track": track,
        "n": n,
        "accuracy": _mean([float(s.correct) for s in scores]),
        "strict_accuracy": _mean([float(s.correct and s.format_ok) for s in scores]),
        "f1": {"macro": f1_macro, "micro": f1_score(micro_p, micro_r)},
        # The macro F1 when every output with a format error counts as unparseable.
        "strict_f1": _mean([_strict_f1(track, s) for s in scores]),
        "precision": {"macro": _mean([s.precision for s in scores]), "micro": micro_p},
        "recall": {"macro": _mean([s.recall for s in scores]), "micro": micro_r},
        "format_compliance": _mean([float(s.format_ok) for s in scores]),
        "errors": dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_category": by_category,
        "missing_predictions": len(missing),
        "missing_ids": missing[:50],
        "baseline": baselines.compare(track, f1_macro),
    }
    if track == "toolcall":
        results["argument_f1"] = {
            "macro": _mean([s.argument_f1 for s in scores]),
            "micro": f1_score(arg_p, arg_r),
        }
    return results


def score_all(
    examples: list[EvalExample],
    outputs: dict[str, str],
    track: str,
    expected_format: CallFormat = CallFormat.TARGET,
    strict: bool = False,
) -> tuple[dict[str, Any], list[ExampleScore]]:
    """Score every example; an example without an output is scored as an empty output and reported."""
    scores = [score_example(ex, outputs.get(ex.id), expected_format, strict) for ex in examples]
    results = aggregate(track, scores)
    results["strict"] = strict
    return results, scores
