"""Generation backends: turn prompts (chat messages) into raw model outputs.

- `hf` (hf.py): transformers, optional LoRA adapter, batched greedy generation with left padding;
- `openai` (openai.py): any OpenAI-compatible /v1/chat/completions endpoint, concurrent, with retries;
- `predictions` (predictions.py): outputs produced elsewhere, read from a predictions file.

Every backend answers every request: a request it could not complete gets `output = ""` (or None when a
predictions file lacks it) and an `error` saying why, so one bad response never loses the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class Request:
    id: str
    messages: list[dict[str, Any]]


@dataclass(slots=True)
class Generation:
    id: str
    output: str | None  # None: no output at all (a predictions file without this id)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "output": self.output}
        if self.error:
            out["error"] = self.error
        return out


ProgressFn = Callable[[int], None]  # called with how many requests just finished
StopFn = Callable[[], bool]  # True when the job was asked to stop


class Backend(Protocol):
    name: str

    def describe(self) -> dict[str, Any]:
        """What results.json records about the generator (model, adapter, settings; never a secret)."""
        ...

    def generate(
        self, requests: list[Request], progress: ProgressFn | None = None, should_stop: StopFn | None = None
    ) -> list[Generation]:
        """One Generation per request, in the requests' order (fewer when stopped early)."""
        ...


def never() -> bool:
    return False
