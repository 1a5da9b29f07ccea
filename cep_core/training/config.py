"""The training configuration: a TOML file, validated field by field, resolved and written back as run.toml.

Every mistake names the file and the field (a typo in a key is an error, not a silently ignored setting).
This module imports nothing heavy: the CLI validates configs without loading torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.store.configfile import field_errors, from_table, load_file
from cep_core.store.tomlfile import dumps

REPORT_TARGETS = ("tensorboard", "wandb")
CHOICES: dict[str, tuple[str, ...]] = {
    "device": ("auto", "cpu", "cuda"),
    "tool_format": ("target", "hermes"),
    "lr_scheduler": (
        "linear",
        "cosine",
        "constant",
        "constant_with_warmup",
        "cosine_with_restarts",
        "polynomial",
    ),
    "bf16": ("auto", "true", "false"),
    "packing": ("auto", "true", "false"),
}


@dataclass(slots=True)
class DataConfig:
    sources: list[str] = field(default_factory=lambda: ["builtin:sample"])
    split: str = "train"
    config_name: str = ""  # a Hub dataset's configuration (e.g. func_calling_singleturn)
    tool_format: str = "target"
    cep: str = "universal"  # a CEP variant, a file, or "none"
    holdout_fraction: float = 0.1
    max_rows: int = 0
    seed: int = 0


@dataclass(slots=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    modules_to_save: list[str] = field(default_factory=list)  # trained in full and saved with the adapter
    # > 0: adapt only the top N transformer layers. The backward pass then stops at the lowest adapted layer, which
    # on a CPU trains about twice as fast as adapting all layers (docs/training.md has the measurements).
    top_layers: int = 0


@dataclass(slots=True)
class TrainSettings:
    epochs: float = 1.0
    max_steps: int = 0  # > 0 overrides epochs
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    batch_size: int = 4
    grad_accum: int = 1
    max_seq_length: int = 2048
    bf16: str = "auto"
    gradient_checkpointing: bool = False
    packing: str = "auto"
    save_steps: int = 50
    save_total_limit: int = 3
    logging_steps: int = 1
    seed: int = 42
    # Where the Trainer also sends its metrics: tensorboard (RUN_DIR/tensorboard/), wandb, both, or none.
    # progress.jsonl is written whatever this says.
    report_to: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TrainConfig:
    name: str = "run"
    model: str = "builtin:tiny"
    device: str = "auto"
    gpus: list[int] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a config file; relative local data paths become absolute (relative to the file)."""
    return load_file(path, config_from_dict, _resolve_paths)


def _resolve_paths(config: TrainConfig, folder: Path) -> None:
    config.data.sources = [_resolve_source(s, folder) for s in config.data.sources]
    if config.data.cep not in ("none",) and (folder / config.data.cep).is_file():
        config.data.cep = str((folder / config.data.cep).resolve())
    if config.model.startswith((".", "~")) or (folder / config.model).is_dir():
        config.model = str((folder / config.model).expanduser().resolve())


def _resolve_source(source: str, base: Path) -> str:
    from cep_core.data.prepare import split_cap

    spec, cap = split_cap(source)
    if cap is not None:
        return f"{_resolve_source(spec, base)}[:{cap}]"
    if source.startswith(("builtin:", "bfcl:", "bfcl-json:")) or source.startswith("/"):
        return source
    candidate = (base / source).expanduser()
    if source.startswith((".", "~")) or candidate.exists():
        return str(candidate.resolve())
    return source


def config_from_dict(raw: dict[str, Any], path: str | Path | None = None) -> TrainConfig:
    return from_table(TrainConfig, raw, path, _check_values, bool_as_string=CHOICES)


def _check_values(config: TrainConfig, path: str | Path | None) -> None:
    bad = field_errors(path)
    checks: list[tuple[str, Any, tuple[str, ...]]] = [
        ("device", config.device, CHOICES["device"]),
        ("data.tool_format", config.data.tool_format, CHOICES["tool_format"]),
        ("train.lr_scheduler", config.train.lr_scheduler, CHOICES["lr_scheduler"]),
        ("train.bf16", config.train.bf16, CHOICES["bf16"]),
        ("train.packing", config.train.packing, CHOICES["packing"]),
    ]
    for name, value, choices in checks:
        if value not in choices:
            raise bad(name, f"{value!r} is not one of {', '.join(choices)}")
    if not config.model.strip():
        raise bad("model", "give a Hub id (org/name), a local directory, builtin:tiny or builtin:smollm2")
    if not config.data.sources:
        raise bad("data.sources", "list at least one dataset (a file, a Hub name, or builtin:sample)")
    if not 0 <= config.data.holdout_fraction < 1:
        raise bad("data.holdout_fraction", "must be in [0, 1)")
    positive = {
        "lora.r": config.lora.r,
        "lora.alpha": config.lora.alpha,
        "train.batch_size": config.train.batch_size,
        "train.grad_accum": config.train.grad_accum,
        "train.max_seq_length": config.train.max_seq_length,
        "train.save_steps": config.train.save_steps,
        "train.logging_steps": config.train.logging_steps,
    }
    for name, value in positive.items():
        if value <= 0:
            raise bad(name, f"must be positive, got {value}")
    if config.lora.top_layers < 0:
        raise bad(
            "lora.top_layers", f"cannot be negative (0 adapts every layer), got {config.lora.top_layers}"
        )
    if not 0 <= config.lora.dropout < 1:
        raise bad("lora.dropout", "must be in [0, 1)")
    if config.train.learning_rate <= 0:
        raise bad("train.learning_rate", "must be positive")
    if config.train.max_steps < 0 or config.data.max_rows < 0 or config.train.save_total_limit < 0:
        raise bad("train.max_steps", "counts cannot be negative")
    if config.train.max_steps == 0 and config.train.epochs <= 0:
        raise bad("train.epochs", "set epochs > 0 or max_steps > 0")
    if not 0 <= config.train.warmup_ratio < 1:
        raise bad("train.warmup_ratio", "must be in [0, 1)")
    if any(g < 0 for g in config.gpus):
        raise bad("gpus", "GPU indices cannot be negative")
    targets = config.train.report_to
    for target in targets:
        if target not in (*REPORT_TARGETS, "none"):
            raise bad("train.report_to", f"{target!r} is not one of none, {', '.join(REPORT_TARGETS)}")
    if "none" in targets and len(targets) > 1:
        raise bad("train.report_to", '"none" cannot be combined with a tracker')
    config.train.report_to = [t for t in targets if t != "none"]


def to_toml(config: TrainConfig) -> str:
    """The config as TOML (what run.toml holds); load_config reads it back to an equal config."""
    return dumps(config.to_dict())


def write_run_toml(config: TrainConfig, path: str | Path) -> None:
    from cep_core.store.private import write_private

    write_private(path, to_toml(config))
