"""The CEP ablation: what the prefix alone and the training add, measured on the same held-out examples.

One config with `ablation = true` evaluates three variants of one trained model, each a normal evaluation
(results on disk, a row in cep.db) tagged with the ablation's id and its variant:

    base       the base model, no CEP               what the user starts from
    base+cep   the base model, the CEP at inference  what the prefix alone buys
    lora+cep   the adapter, the same CEP             what training adds

`summarize` turns the three rows into the gains (CEP, training, both) and the deltas against both baselines;
the CLI (`cep eval ablation`) and the console's Evals screen show exactly that. Nothing here is heavy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.evaluation.config import EvalConfig
from cep_core.prompts.prefix import NO_CEP
from cep_core.scoring import baselines

METRICS = ("toolcall_f1", "structured_f1", "toolcall_format_compliance", "structured_format_compliance")
HEADLINE = ("toolcall_f1", "structured_f1")


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    title: str
    use_adapter: bool
    with_cep: bool


VARIANTS = (
    Variant("base", "base, no CEP", use_adapter=False, with_cep=False),
    Variant("base+cep", "base + CEP", use_adapter=False, with_cep=True),
    Variant("lora+cep", "LoRA + CEP", use_adapter=True, with_cep=True),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


def check_ablation(config: EvalConfig, path: str | Path | None = None) -> None:
    """An ablation needs a trained adapter to compare with its base: a training run, or model + adapter."""
    if config.backend != "hf":
        raise InputError(
            'an ablation loads the base model with and without the adapter: use backend = "hf"',
            path=path,
            field="backend",
        )
    if not config.run and not (config.model and config.adapter):
        raise InputError(
            'an ablation needs a trained adapter: run = "<training run id>" (or model = … and adapter = …)',
            path=path,
            field="run",
        )
    if config.cep == NO_CEP:
        raise InputError(
            "an ablation measures the CEP itself: leave cep unset (the run's CEP) or name a variant or file",
            path=path,
            field="cep",
        )


def variant_config(config: EvalConfig, variant: Variant, cep: str) -> EvalConfig:
    """The plain evaluation config of one variant: same sets, same generation settings."""
    derived = copy.deepcopy(config)
    derived.ablation = False
    derived.name = f"{config.name}:{variant.name}"
    derived.use_adapter = variant.use_adapter
    if not variant.use_adapter:
        derived.adapter = ""
    derived.cep = cep if variant.with_cep else NO_CEP
    return derived


@dataclass(slots=True)
class AblationRow:
    variant: str
    title: str
    eval_id: str | None
    state: str
    figures: dict[str, float | None]


@dataclass(slots=True)
class Ablation:
    """Three variants side by side, the gains between them and the deltas against both baselines."""

    id: str
    name: str
    rows: list[AblationRow]
    gains: dict[str, dict[str, float | None]] = field(default_factory=dict)
    baselines: dict[str, dict[str, float | None]] = field(default_factory=dict)
    n: dict[str, int | None] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(r.state == "completed" for r in self.rows)

    def row(self, variant: str) -> AblationRow:
        return next(r for r in self.rows if r.variant == variant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "complete": self.complete,
            "n": self.n,
            "variants": [
                {"variant": r.variant, "title": r.title, "eval_id": r.eval_id, "state": r.state, **r.figures}
                for r in self.rows
            ],
            "gains": self.gains,
            "baselines": self.baselines,
        }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def summarize(records: list[Any]) -> Ablation:
    """The ablation of these evaluation records (cep_core.evaluation.store.EvalRecord, one per variant)."""
    if not records:
        raise InputError("no evaluations in this ablation")
    by_variant = {r.variant: r for r in records}
    first = records[0]
    rows = []
    for variant in VARIANTS:
        record = by_variant.get(variant.name)
        figures = {m: getattr(record, m, None) if record else None for m in METRICS}
        rows.append(
            AblationRow(
                variant.name,
                variant.title,
                record.id if record else None,
                record.state if record else "missing",
                figures,
            )
        )
    out = Ablation(first.ablation or first.id, (first.name or "").split(":")[0], rows)
    base, cep, lora = (out.row(v).figures for v in VARIANT_NAMES)
    for metric in METRICS:
        out.gains[metric] = {
            "cep": _delta(cep[metric], base[metric]),
            "training": _delta(lora[metric], cep[metric]),
            "total": _delta(lora[metric], base[metric]),
        }
    for metric in HEADLINE:
        value = lora[metric]
        out.baselines[metric] = {
            "llm": baselines.LLM[metric],
            "small_model": baselines.SMALL_MODEL[metric],
            "delta_llm": _delta(value, baselines.LLM[metric]),
            "delta_small_model": _delta(value, baselines.SMALL_MODEL[metric]),
        }
    out.n = {
        "toolcall": getattr(by_variant.get("lora+cep") or first, "toolcall_n", None),
        "structured": getattr(by_variant.get("lora+cep") or first, "structured_n", None),
    }
    return out


def list_ablations(home: str | Path | None = None) -> list[Ablation]:
    """Every ablation in cep.db, newest first."""
    from cep_core.evaluation.store import list_evaluations

    groups: dict[str, list[Any]] = {}
    for record in list_evaluations(home):
        if record.ablation:
            groups.setdefault(record.ablation, []).append(record)
    return [summarize(records) for records in groups.values()]


def get_ablation(ref: str | None = None, home: str | Path | None = None) -> Ablation:
    """An ablation by id, unique id prefix or name; the newest when ref is None."""
    ablations = list_ablations(home)
    if not ablations:
        raise InputError("no ablation yet: run `cep eval ablation CONFIG.toml`")
    if ref is None:
        return ablations[0]
    exact = [a for a in ablations if a.id == ref or a.name == ref]
    if exact:
        return exact[0]
    prefixed = [a for a in ablations if a.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        raise InputError(
            f"{ref!r} matches {len(prefixed)} ablations: {', '.join(a.id for a in prefixed[:5])}"
        )
    raise InputError(f"no ablation {ref!r} (cep eval ablation list shows them)")
