"""A run's progress figures as the job table shows them, read from progress.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cep_core.runs import iter_progress


def run_progress(run_dir: str | Path, until: float | None = None) -> dict[str, Any]:
    """step, total_steps, loss, tokens_per_s, eta_s and the last event; steps survive across attempts.

    `until` (a time stamp): only events written by then count. An attempt that has ended passes its end
    time, so its row shows where it stopped, not where the attempt that resumed it has got to since."""
    out: dict[str, Any] = {
        "step": None,
        "total_steps": None,
        "loss": None,
        "tokens_per_s": None,
        "eta_s": None,
        "last_event": None,
    }
    for event in iter_progress(run_dir):
        if until is not None and isinstance(event.get("ts"), int | float) and event["ts"] > until:
            break
        kind = event["event"]
        out["last_event"] = kind
        if kind == "start" and isinstance(event.get("total_steps"), int):
            out["total_steps"] = event["total_steps"]
        elif kind == "step":
            for key in ("step", "total_steps", "loss", "tokens_per_s", "eta_s"):
                if event.get(key) is not None:
                    out[key] = event[key]
        elif kind in ("checkpoint", "end") and isinstance(event.get("step"), int):
            out["step"] = max(out["step"] or 0, event["step"])
            if kind == "end":
                out["eta_s"] = None
    return out
