"""The numbers to beat, from the project's history. Every screen and report imports them from here."""

from __future__ import annotations

from typing import Any

# The large model the small one should replace.
LLM = {"structured_f1": 0.60, "toolcall_f1": 0.74}
# The earlier small model, before the CEP and this training path.
SMALL_MODEL = {"structured_f1": 0.32, "toolcall_f1": 0.0}

METRIC_OF_TRACK = {"structured": "structured_f1", "toolcall": "toolcall_f1"}
TRACK_OF_METRIC = {metric: track for track, metric in METRIC_OF_TRACK.items()}


def compare(track: str, value: float) -> dict[str, Any]:
    """The headline F1 of a track set beside both baselines."""
    metric = METRIC_OF_TRACK[track]
    return {
        "metric": metric,
        "value": value,
        "llm": LLM[metric],
        "small_model": SMALL_MODEL[metric],
        "delta_llm": round(value - LLM[metric], 6),
        "delta_small_model": round(value - SMALL_MODEL[metric], 6),
        "beats_llm": value > LLM[metric],
        "beats_small_model": value > SMALL_MODEL[metric],
    }


def beats(metric: str, value: Any) -> dict[str, bool]:
    """Which baselines a headline figure beats (strictly), read off `compare`; a missing figure or a metric
    without baselines beats none, so every screen marks the same figures."""
    if metric not in TRACK_OF_METRIC or isinstance(value, bool) or not isinstance(value, int | float):
        return {"llm": False, "small_model": False}
    result = compare(TRACK_OF_METRIC[metric], value)
    return {"llm": result["beats_llm"], "small_model": result["beats_small_model"]}
