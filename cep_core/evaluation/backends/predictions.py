"""The `predictions` backend: outputs produced elsewhere, read from an `{id, output}` JSONL file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cep_core.data.predictions import load_predictions
from cep_core.evaluation.backends import Generation, ProgressFn, Request, StopFn


class PredictionsBackend:
    name = "predictions"

    def __init__(self, path: str | Path, model: str = ""):
        self.path = Path(path)
        self.model = model

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model or None, "predictions": str(self.path)}

    def generate(
        self, requests: list[Request], progress: ProgressFn | None = None, should_stop: StopFn | None = None
    ) -> list[Generation]:
        # Ids the file has beyond the requests are fine: an eval may sample a subset of what was predicted.
        outputs = load_predictions(self.path)
        out = [
            Generation(r.id, outputs.get(r.id), None if r.id in outputs else "no prediction for this id")
            for r in requests
        ]
        if progress:
            progress(len(out))
        return out
