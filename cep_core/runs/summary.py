"""A run's figures side by side with another's: what was trained (model, CEP, LoRA, learning rate) and how it
went (steps, losses, throughput, time, its evaluations), and its loss curve with the evaluation points.

Read from the run directory alone (run.toml, progress.jsonl) and the evaluations table, so `cep runs compare`
and the console's comparison show the same numbers. Nothing here imports anything heavy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.runs import RunPaths, iter_progress
from cep_core.store.configfile import read_leniently


@dataclass(slots=True)
class EvalPoint:
    """An `eval` event of the run: an evaluation of it finished (step: where training was, None = at its end)."""

    step: int | None
    metrics: dict[str, Any]

    def label(self) -> str:
        """`tool F1 0.35 · struct F1 0.80`: the two headline figures that exist."""
        parts = []
        for key, short in (("toolcall_f1", "tool F1"), ("structured_f1", "struct F1")):
            value = self.metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                parts.append(f"{short} {value:.2f}")
        return " · ".join(parts) or "eval"


@dataclass(slots=True)
class LossCurve:
    """Training loss by step (a resumed run's repeated steps keep the latest value), and the eval points."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    evals: list[EvalPoint] = field(default_factory=list)

    @property
    def last_step(self) -> int | None:
        return self.steps[-1] if self.steps else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def loss_curve(run_dir: str | Path, limit: int = 0) -> LossCurve:
    """Every `step` event's loss (the last `limit` steps when limit > 0) and every `eval` event."""
    by_step: dict[int, float] = {}
    evals: list[EvalPoint] = []
    for ev in iter_progress(run_dir):
        kind = ev["event"]
        step = ev.get("step")
        if kind == "step" and isinstance(step, int) and not isinstance(step, bool):
            loss = _number(ev.get("loss"))
            if loss is not None:
                by_step[step] = loss
        elif kind == "eval" and isinstance(ev.get("metrics"), dict):
            evals.append(EvalPoint(step if isinstance(step, int) else None, dict(ev["metrics"])))
    steps = sorted(by_step)
    if limit > 0:
        steps = steps[-limit:]
    return LossCurve(steps, [by_step[s] for s in steps], evals)


@dataclass(slots=True)
class RunSummary:
    run_id: str
    run_dir: str
    name: str
    model: str | None = None
    cep: str | None = None
    lora_r: int | None = None
    lora_alpha: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    status: str = "pending"
    step: int | None = None
    total_steps: int | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    min_loss: float | None = None
    tokens_per_s: float | None = None  # mean over the step events that report it
    wall_s: float | None = None  # first event to last, across attempts
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# (label, attribute, format) of the figures a comparison shows, in order: one list for the CLI and the console.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "{}"),
    ("CEP", "cep", "{}"),
    ("LoRA r / alpha", "lora", "{}"),
    ("learning rate", "learning_rate", "{:g}"),
    ("batch size", "batch_size", "{}"),
    ("status", "status", "{}"),
    ("steps", "steps", "{}"),
    ("first loss", "first_loss", "{:.4f}"),
    ("final loss", "final_loss", "{:.4f}"),
    ("min loss", "min_loss", "{:.4f}"),
    ("tokens/s", "tokens_per_s", "{:,.0f}"),
    ("wall time", "wall_s", "duration"),
    ("toolcall F1", "toolcall_f1", "{:.3f}"),
    ("structured F1", "structured_f1", "{:.3f}"),
)


def figure(summary: RunSummary, attribute: str, fmt: str) -> str:
    """One cell of the comparison ('-' when unknown)."""
    if attribute == "lora":
        value: Any = f"{summary.lora_r} / {summary.lora_alpha}" if summary.lora_r is not None else None
    elif attribute == "steps":
        value = f"{summary.step if summary.step is not None else '-'}/{summary.total_steps or '-'}"
    elif attribute in ("toolcall_f1", "structured_f1"):
        value = next(
            (e[attribute] for e in summary.evaluations if e.get(attribute) is not None), None
        )  # the newest evaluation that has the track
    else:
        value = getattr(summary, attribute)
    if value is None:
        return "-"
    if fmt == "duration":
        seconds = int(round(value))
        return (
            f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
            if seconds >= 3600
            else (f"{seconds // 60}m{seconds % 60:02d}s")
        )
    return fmt.format(value)


def summarize_run(run_dir: str | Path, home: str | Path | None = None) -> RunSummary:
    paths = RunPaths(Path(run_dir))
    out = RunSummary(run_id=paths.root.name, run_dir=str(paths.root), name=paths.root.name)
    raw = read_leniently(paths.run_toml)
    data, lora, train = (
        raw.get(k) if isinstance(raw.get(k), dict) else {} for k in ("data", "lora", "train")
    )
    out.name = str(raw.get("name") or out.name)
    out.model = raw.get("model")
    out.cep = data.get("cep")
    out.lora_r, out.lora_alpha = lora.get("r"), lora.get("alpha")
    out.learning_rate, out.batch_size = train.get("learning_rate"), train.get("batch_size")
    losses: list[float] = []
    rates: list[float] = []
    first_ts = last_ts = None
    for ev in iter_progress(paths.root):
        ts = _number(ev.get("ts"))
        if ts is not None:
            first_ts = ts if first_ts is None else first_ts
            last_ts = ts
        kind = ev["event"]
        if kind == "start":
            out.status = "running"
            out.total_steps = (
                ev.get("total_steps") if isinstance(ev.get("total_steps"), int) else out.total_steps
            )
        elif kind == "step":
            if isinstance(ev.get("step"), int):
                out.step = ev["step"]
            if isinstance(ev.get("total_steps"), int):
                out.total_steps = ev["total_steps"]
            loss, rate = _number(ev.get("loss")), _number(ev.get("tokens_per_s"))
            if loss is not None:
                losses.append(loss)
            if rate is not None:
                rates.append(rate)
        elif kind == "end":
            out.status = str(ev.get("status") or "ended")
            if isinstance(ev.get("step"), int):
                out.step = ev["step"]
        elif kind == "error":
            out.status = f"failed ({ev.get('kind', 'unknown')})"
    if losses:
        out.first_loss, out.final_loss, out.min_loss = losses[0], losses[-1], min(losses)
    if rates:
        out.tokens_per_s = sum(rates) / len(rates)
    if first_ts is not None and last_ts is not None:
        out.wall_s = last_ts - first_ts
    out.evaluations = run_evaluations(paths.root, home)
    return out


def run_evaluations(run_dir: str | Path, home: str | Path | None = None) -> list[dict[str, Any]]:
    """The evaluations of a training run (newest first) with their headline figures."""
    from cep_core.evaluation.store import list_evaluations

    root = str(Path(run_dir))
    try:
        records = list_evaluations(home)
    except Exception:  # noqa: BLE001 — a run's figures are still worth showing without its evaluations
        return []
    return [
        {
            "id": r.id,
            "name": r.name,
            "state": r.state,
            "adapter": bool(r.adapter),
            "cep_variant": r.cep_variant,
            "toolcall_f1": r.toolcall_f1,
            "structured_f1": r.structured_f1,
            "format_compliance": r.format_compliance,
        }
        for r in records
        if r.training_run == root or r.run_dir == root
    ]


def resolve_run(ref: str, home: str | Path | None = None) -> Path:
    """A run directory from a path, a run id or unique prefix, or a job id (cep jobs list)."""
    from cep_core.runs import find_run

    try:
        return find_run(ref, home).root
    except InputError as not_a_run:
        from cep_core.errors import CepError
        from cep_core.jobs.registry import Registry

        try:
            return Path(Registry(home).get(ref).run_dir)
        except CepError:
            raise not_a_run from None
