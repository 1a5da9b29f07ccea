"""The evaluation configuration: a TOML file, validated field by field (a typo in a key is an error).

    name = "tiny-demo"
    backend = "hf"                 # hf | openai | predictions
    run = "20261125-143012-demo-ab12"   # optional: evaluate a training run (its adapter, its tiny-base)
    use_adapter = true             # false: the run's base model alone (the untrained reference)
    model = "Qwen/Qwen2.5-0.5B-Instruct"  # hf: local dir or Hub id; openai: the served model name
    adapter = "/path/to/adapter"   # optional LoRA adapter (hf backend)
    cep = "compact"                # a CEP variant or file, or "none"; default: the run's CEP, else none
    tool_format = "target"         # the call format the model is asked for and scored in
    strict = false                 # score any output with a format error as unparseable
    ablation = false               # true: base / base+CEP / LoRA+CEP side by side (cep eval ablation)

    [[sets]]                       # one or more eval sets (see cep_core.evaluation.sets)
    source = "bfcl:simple_python,multiple,irrelevance"
    sample = 30
    seed = 0

    [hf]      batch_size, max_new_tokens, device, dtype
    [openai]  base_url, api_key_env, concurrency, max_retries, timeout_s, max_tokens, temperature
    [predictions]  path

Relative paths resolve against the config file's folder. Nothing here imports anything heavy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.store.configfile import field_errors, from_table, load_file
from cep_core.store.tomlfile import dumps

BACKENDS = ("hf", "openai", "predictions")
TOOL_FORMATS = ("target", "hermes")
SPLITS = ("all", "holdout", "train")


@dataclass(slots=True)
class SetSpec:
    """One eval set: where its examples come from and how many of them (0: all), sampled with a fixed seed."""

    source: str
    sample: int = 0
    seed: int = 0
    track: str = ""  # only for eval-format files: toolcall or structured (default: from the rows)
    split: str = ""  # all | holdout | train; default: holdout for Hermes/json-mode rows, all for BFCL
    holdout_fraction: float = -1.0  # -1: the training run's, else 0.1
    holdout_seed: int = -1  # -1: the training run's, else 0


@dataclass(slots=True)
class HfSettings:
    batch_size: int = 8
    max_new_tokens: int = 256
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16


@dataclass(slots=True)
class OpenAISettings:
    base_url: str = ""
    api_key_env: str = ""  # the NAME of the environment variable holding the key; never the key itself
    concurrency: int = 4
    max_retries: int = 5
    timeout_s: float = 120.0
    max_tokens: int = 1024
    temperature: float = 0.0
    backoff_s: float = 1.0  # first back-off; doubles on each retry, capped at max_backoff_s
    max_backoff_s: float = 60.0


@dataclass(slots=True)
class PredictionsSettings:
    path: str = ""


@dataclass(slots=True)
class EvalConfig:
    name: str = "eval"
    backend: str = "hf"
    run: str = ""
    use_adapter: bool = True
    model: str = ""
    adapter: str = ""
    cep: str = ""  # "" = the run's CEP when there is a run, else none
    tool_format: str = "target"
    strict: bool = False
    ablation: bool = (
        False  # true: evaluate base / base+CEP / LoRA+CEP on the same examples (cep eval ablation)
    )
    sets: list[SetSpec] = field(default_factory=list)
    hf: HfSettings = field(default_factory=HfSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    predictions: PredictionsSettings = field(default_factory=PredictionsSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_eval_config(path: str | Path) -> EvalConfig:
    """Read and validate an eval config; relative paths become absolute against the file's folder."""
    return load_file(path, eval_config_from_dict, _resolve_paths)


def eval_config_from_dict(raw: dict[str, Any], path: str | Path | None = None) -> EvalConfig:
    return from_table(EvalConfig, raw, path, _check)


def _resolve_paths(config: EvalConfig, folder: Path) -> None:
    base = folder.resolve()

    def local(value: str) -> str:
        if not value or value.startswith("/"):
            return value
        candidate = (base / value).expanduser()
        if value.startswith((".", "~")) or candidate.exists():
            return str(candidate.resolve())
        return value

    config.adapter = local(config.adapter)
    config.predictions.path = local(config.predictions.path)
    config.model = local(config.model)
    if config.cep and config.cep != "none":
        config.cep = local(config.cep)
    if config.run and ("/" in config.run or config.run.startswith((".", "~"))):
        config.run = local(config.run)
    for spec in config.sets:
        prefix, sep, rest = spec.source.partition(":")
        if sep and prefix in ("hermes", "json-mode") and not rest.startswith("builtin:"):
            spec.source = f"{prefix}:{local(rest)}"
        elif not sep or prefix not in ("bfcl", "bfcl-json", "hermes", "json-mode", "builtin"):
            spec.source = local(spec.source)


def _check(config: EvalConfig, path: str | Path | None) -> None:
    bad = field_errors(path)
    if config.backend not in BACKENDS:
        raise bad("backend", f"{config.backend!r} is not one of {', '.join(BACKENDS)}")
    if config.tool_format not in TOOL_FORMATS:
        raise bad("tool_format", f"{config.tool_format!r} is not one of {', '.join(TOOL_FORMATS)}")
    if not config.sets:
        raise bad("sets", 'give at least one eval set: [[sets]] source = "bfcl:simple_python"')
    for i, spec in enumerate(config.sets):
        if not spec.source.strip():
            raise bad(f"sets[{i}].source", "empty source")
        if spec.sample < 0:
            raise bad(f"sets[{i}].sample", "cannot be negative (0 means every example)")
        if spec.split and spec.split not in SPLITS:
            raise bad(f"sets[{i}].split", f"{spec.split!r} is not one of {', '.join(SPLITS)}")
        if spec.track and spec.track not in ("toolcall", "structured"):
            raise bad(f"sets[{i}].track", "use toolcall or structured")
        if spec.holdout_fraction != -1.0 and not 0 <= spec.holdout_fraction < 1:
            raise bad(f"sets[{i}].holdout_fraction", "must be in [0, 1)")
    if config.backend == "hf":
        if not config.model and not config.run:
            raise bad("model", "the hf backend needs a model (a local folder or Hub id) or a training run")
        if config.hf.batch_size <= 0 or config.hf.max_new_tokens <= 0:
            raise bad("hf.batch_size", "batch_size and max_new_tokens must be positive")
        if config.hf.device not in ("auto", "cpu", "cuda"):
            raise bad("hf.device", "use auto, cpu or cuda")
        if config.hf.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise bad("hf.dtype", "use auto, float32, bfloat16 or float16")
    elif config.backend == "openai":
        o = config.openai
        if not o.base_url.startswith(("http://", "https://")):
            raise bad("openai.base_url", "give the endpoint's base URL, e.g. http://127.0.0.1:8000/v1")
        if not config.model:
            raise bad("model", "the openai backend needs the served model's name")
        if o.concurrency <= 0 or o.max_retries < 0 or o.timeout_s <= 0 or o.max_tokens <= 0:
            raise bad("openai.concurrency", "concurrency, timeout_s and max_tokens must be positive")
    elif not config.predictions.path:
        raise bad("predictions.path", "the predictions backend needs the predictions file")
    if config.ablation:
        from cep_core.evaluation.ablation import check_ablation

        check_ablation(config, path)


def to_toml(config: EvalConfig) -> str:
    """The resolved config as TOML (what run.toml holds); load_eval_config reads it back to an equal config."""
    return dumps(config.to_dict())
