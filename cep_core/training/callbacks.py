"""Trainer callbacks: progress events for the console, a clean stop (checkpoint first) on SIGTERM/SIGINT, and
the Trainer's log lines printed as JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from cep_core.jobs.entry import StopFlag
from cep_core.runs import ProgressWriter


class ProgressCallback(TrainerCallback):
    """Writes `start`, `step` and `checkpoint` events; asks for a checkpoint and a stop when flagged."""

    def __init__(
        self, writer: ProgressWriter, stop: StopFlag, start_fields: dict[str, Any], checkpoints_dir: Path
    ):
        self.writer = writer
        self.stop = stop
        self.start_fields = start_fields
        self.checkpoints_dir = checkpoints_dir
        self._t0 = time.monotonic()
        self._step0 = 0
        self._tokens0 = 0
        self.last_loss: float | None = None
        self.first_loss: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._t0 = time.monotonic()
        self._step0 = state.global_step
        self._tokens0 = state.num_input_tokens_seen
        self.writer.emit("start", total_steps=state.max_steps, **self.start_fields)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.stop.requested:
            control.should_save = True
            control.should_training_stop = True

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not logs or "loss" not in logs:
            return
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        done = state.global_step - self._step0
        tokens = int(state.num_input_tokens_seen)
        remaining = max(state.max_steps - state.global_step, 0)
        loss = float(logs["loss"])
        self.last_loss = loss
        if self.first_loss is None:
            self.first_loss = loss
        self.writer.emit(
            "step",
            step=state.global_step,
            total_steps=state.max_steps,
            epoch=round(float(state.epoch or 0), 4),
            loss=loss,
            learning_rate=_num(logs.get("learning_rate")),
            grad_norm=_num(logs.get("grad_norm")),
            tokens=tokens,
            tokens_per_s=round((tokens - self._tokens0) / elapsed, 1),
            eta_s=round(elapsed / done * remaining, 1) if done > 0 else None,
        )

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        path = self.checkpoints_dir / f"checkpoint-{state.global_step}"
        if path.is_dir():
            self.writer.emit("checkpoint", step=state.global_step, path=str(path))


class JsonLogPrinter(TrainerCallback):
    """Each log of the Trainer as one JSON line on stdout (stdout.log, the console's log view). It replaces the
    Trainer's own printer, which writes Python dict reprs with numbers as strings: `{'loss': '6.762', …}`."""

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not logs or not state.is_local_process_zero:
            return
        line = {"step": state.global_step}
        for key, value in logs.items():
            if key != "total_flos":
                number = _num(value) if not isinstance(value, bool) else None
                line[key] = number if number is not None else value
        print(json.dumps(line, default=str), flush=True)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
