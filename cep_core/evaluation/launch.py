"""Starting evaluations as background jobs: the one path `cep eval CONFIG --detach` and the console's
evaluation form both take (a run directory holding the resolved config, then the jobs layer's `eval` job).

The form asks for an `EvalRequest` — what to evaluate (a training run, or a model folder or Hub id), with or
without the adapter, the CEP, the eval sets and their sample sizes — and a mode from `EVAL_MODES`, which says
how many evaluations one request becomes. Nothing here imports anything heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.evaluation.config import EvalConfig, eval_config_from_dict, to_toml

FORM = "evaluation form"  # what errors name as their "file"
TARGET_KINDS = ("run", "model")
# How one request becomes evaluations: mode -> what the form shows.
EVAL_MODES: dict[str, str] = {
    "single": "one evaluation with these settings",
    "ablation": "ablation: base / base + CEP / LoRA + CEP on the same examples (a training run)",
}
# The sets a new form starts with: BFCL's single-turn calls (toolcall track) and BFCL's simple functions as
# JSON-object answers (structured track), sampled so a CPU evaluation takes minutes, not hours.
DEFAULT_SETS: tuple[tuple[str, int], ...] = (
    ("bfcl:simple_python,multiple,irrelevance", 30),
    ("bfcl-json:simple_python", 20),
)


@dataclass(slots=True)
class EvalRequest:
    """What the user asked for, as typed (strings and flags); `configs_for` validates it."""

    target: str  # a training run (id, unique prefix, folder) or a model (local folder or Hub id)
    kind: str = "run"  # run | model
    use_adapter: bool = True  # run: its LoRA adapter on its base (False: the base alone)
    adapter: str = ""  # model: an optional LoRA adapter folder
    cep: str = ""  # a variant, a file, "none"; "" = the run's CEP (a model: none)
    sets: list[tuple[str, str]] = field(default_factory=lambda: [(s, str(n)) for s, n in DEFAULT_SETS])
    mode: str = "single"
    name: str = ""
    device: str = "auto"  # auto | cpu | cuda
    max_new_tokens: str = "256"


def _whole(text: str, name: str, minimum: int = 0) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InputError(f"{text!r} is not a whole number", path=FORM, field=name) from None
    if value < minimum:
        raise InputError(f"must be at least {minimum}, got {value}", path=FORM, field=name)
    return value


def config_for(request: EvalRequest, home: str | Path | None = None) -> EvalConfig:
    """The evaluation config of a request (hf backend), validated as `cep eval` validates a file."""
    if request.kind not in TARGET_KINDS:
        raise InputError(f"{request.kind!r}: evaluate a run or a model", path=FORM, field="kind")
    target = request.target.strip()
    if not target:
        raise InputError("name the run or the model to evaluate", path=FORM, field="target")
    raw: dict[str, Any] = {
        "name": request.name.strip() or _default_name(request, target),
        "backend": "hf",
        "sets": [
            {"source": source.strip(), "sample": _whole(sample or "0", f"sets[{i}].sample")}
            for i, (source, sample) in enumerate(s for s in request.sets if s[0].strip())
        ],
        "hf": {
            "device": request.device,
            "max_new_tokens": _whole(request.max_new_tokens, "hf.max_new_tokens", 1),
        },
    }
    if request.cep.strip():
        raw["cep"] = request.cep.strip()
    if request.kind == "run":
        from cep_core.runs import find_run

        raw["run"] = str(find_run(target, home).root)
        raw["use_adapter"] = request.use_adapter
    else:
        local = Path(target).expanduser()
        raw["model"] = str(local.resolve()) if local.exists() else target
        if request.adapter.strip():
            raw["adapter"] = str(Path(request.adapter.strip()).expanduser().resolve())
    return eval_config_from_dict(raw, path=FORM)


def _default_name(request: EvalRequest, target: str) -> str:
    base = Path(target.rstrip("/")).name or "model"
    if request.kind == "run":
        parts = base.split("-")
        base = "-".join(parts[2:-1]) or base  # 20261125-143012-demo-ab12 -> demo
        return f"{base}-{'lora' if request.use_adapter else 'base'}"
    return base


def configs_for(request: EvalRequest, home: str | Path | None = None) -> list[EvalConfig]:
    """The evaluations a request becomes, by its mode: one config (an ablation's three variants run in one job)."""
    if request.mode not in EVAL_MODES:
        raise InputError(f"{request.mode!r} is not one of {', '.join(EVAL_MODES)}", path=FORM, field="mode")
    config = config_for(request, home)
    if request.mode == "ablation":
        from cep_core.evaluation.ablation import check_ablation

        config.ablation = True
        check_ablation(config, FORM)
    return [config]


def prepare_run(config: EvalConfig, home: str | Path | None = None) -> Path:
    """A run directory holding the resolved config (every path absolute, so the job reads it from anywhere)."""
    from cep_core.runs import create_run_dir
    from cep_core.store.private import write_private

    paths = create_run_dir(config.name, home)
    write_private(paths.run_toml, to_toml(config))
    return paths.root


def start_evaluation(config: EvalConfig, home: str | Path | None = None, backend: str = "local") -> Any:
    """Start one evaluation as a background `eval` job; returns the job (cep_core.jobs.registry.Job)."""
    from cep_core.jobs.manager import JobManager

    run_dir = prepare_run(config, home)
    return JobManager(home=home).start_run(run_dir, kind="eval", backend=backend, name=config.name)


def launch(request: EvalRequest, home: str | Path | None = None, backend: str = "local") -> list[Any]:
    """Every evaluation of a request, validated first (a bad field starts nothing), then started."""
    configs = configs_for(request, home)
    return [start_evaluation(config, home, backend) for config in configs]
