"""The model and tokenizer a run trains: builtin:tiny (built once per run, saved in the run directory so
resumes and adapter loads use the same base) or a Hub id / local path; then the LoRA wrap."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cep_core.training.config import TrainConfig
from cep_core.training.failures import ModelAccessError
from cep_core.training.tiny import BUILTIN_TINY, build_bpe_tokenizer, build_tiny_model


def resolve_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def use_bf16(setting: str, device: str) -> bool:
    import torch

    if setting == "false" or device != "cuda":
        return False
    return setting == "true" or torch.cuda.is_bf16_supported()


def load_base(config: TrainConfig, tiny_dir: Path, corpus: Iterable[str], bf16: bool) -> tuple[Any, Any, str]:
    """(model, tokenizer, base path or id the adapter refers to)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cep_core.builtin_models import resolve_model

    if config.model == BUILTIN_TINY:
        if not (tiny_dir / "config.json").is_file():
            tokenizer = build_bpe_tokenizer(corpus)
            model = build_tiny_model(tokenizer, seed=config.train.seed)
            tiny_dir.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(tiny_dir)
            tokenizer.save_pretrained(tiny_dir)
        source = str(tiny_dir)
    else:
        source = resolve_model(config.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16 if bf16 else torch.float32)
    except OSError as exc:
        raise ModelAccessError(f"cannot load model {source}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None:
        raise ModelAccessError(f"{source} has no chat template; use an instruct/chat model", field="model")
    return model, tokenizer, source


def apply_lora(model: Any, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: Any = config.lora.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    layers = top_layer_indices(model, config.lora.top_layers)
    if layers is not None and targets == "all-linear":
        targets = linear_module_names(model)  # peft takes a layer subset only with named target modules
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        modules_to_save=list(config.lora.modules_to_save) or None,
        layers_to_transform=layers,
    )
    # No KV cache while training: it is useless there, and with it transformers ignores packed position ids.
    model.config.use_cache = False
    if config.train.gradient_checkpointing:
        model.enable_input_require_grads()
    return get_peft_model(model, lora)


def top_layer_indices(model: Any, top: int) -> list[int] | None:
    """The indices of the top `top` transformer layers, or None for every layer (top 0, or not fewer than all)."""
    count = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if top <= 0 or not isinstance(count, int) or top >= count:
        return None
    return list(range(count - top, count))


def linear_module_names(model: Any) -> list[str]:
    """The names of the linear layers inside the transformer blocks (what peft's "all-linear" targets)."""
    import torch

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not output
    }
    return sorted(names)


@contextlib.contextmanager
def quiet_peft_deprecations() -> Iterator[None]:
    """peft reads the model's `is_gradient_checkpointing`, which transformers 5 deprecated: a FutureWarning the
    user can do nothing about, in every training and evaluation log. Silenced for that message only."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield
