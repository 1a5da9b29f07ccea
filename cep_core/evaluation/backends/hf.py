"""The `hf` backend: a local or Hub model through transformers, optionally with a LoRA adapter (peft).

Greedy decoding, batched with left padding, prompts rendered by the tokenizer's chat template. Prompts are
sorted by length before batching so a batch pads little; outputs come back in the requests' order. torch,
transformers and peft are imported here only, when the backend is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.evaluation.backends import Generation, ProgressFn, Request, StopFn


class HfBackend:
    name = "hf"

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        *,
        tiny_base: str | Path | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 256,
        device: str = "auto",
        dtype: str = "auto",
    ):
        self.model_name = model
        self.adapter = adapter or None
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.model, self.tokenizer, self.source, self.device = _load(model, adapter, tiny_base, device, dtype)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_name,
            "model_source": self.source,
            "adapter": self.adapter,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
            "device": self.device,
            "decoding": "greedy",
        }

    def render(self, messages: list[dict[str, Any]]) -> str:
        from cep_core.training.dataset import with_tool_role
        from cep_core.training.templates import tool_role_for

        role = tool_role_for(getattr(self.tokenizer, "chat_template", None))
        return self.tokenizer.apply_chat_template(
            with_tool_role(messages, role), tokenize=False, add_generation_prompt=True
        )

    def generate(
        self, requests: list[Request], progress: ProgressFn | None = None, should_stop: StopFn | None = None
    ) -> list[Generation]:
        import torch

        texts = [self.render(r.messages) for r in requests]
        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        order = sorted(range(len(requests)), key=lambda i: len(encoded[i]))
        outputs: dict[int, Generation] = {}
        for start in range(0, len(order), self.batch_size):
            if should_stop and should_stop():
                break
            batch = order[start : start + self.batch_size]
            inputs = self.tokenizer.pad(
                {"input_ids": [encoded[i] for i in batch]}, padding=True, return_tensors="pt"
            ).to(self.device)
            with torch.inference_mode():
                generated = self.model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new_tokens = generated[:, inputs["input_ids"].shape[1] :]
            for i, row in zip(batch, new_tokens, strict=True):
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                outputs[i] = Generation(requests[i].id, text)
            if progress:
                progress(len(batch))
        return [outputs[i] for i in range(len(requests)) if i in outputs]


def complete_one(
    backend: HfBackend,
    messages: list[dict[str, Any]],
    *,
    max_new_tokens: int | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> tuple[str, int, int, bool]:
    """One chat completion for `cep serve`: (text, prompt tokens, completion tokens, ended by the model).

    Greedy at temperature 0 — the same rendering, tokenisation and decoding as `generate`, so a served model
    answers what the evaluation measured."""
    import torch

    text = backend.render(messages)
    ids = backend.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(
        backend.device
    )
    sampling: dict[str, Any] = {"do_sample": False}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    limit = max_new_tokens or backend.max_new_tokens
    with torch.inference_mode():
        generated = backend.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=limit,
            pad_token_id=backend.tokenizer.pad_token_id,
            **sampling,
        )
    new_tokens = generated[0, ids.shape[1] :]
    eos = backend.model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) | {backend.tokenizer.eos_token_id}
    ended = len(new_tokens) < limit or (len(new_tokens) > 0 and int(new_tokens[-1]) in eos_ids)
    output = backend.tokenizer.decode(new_tokens, skip_special_tokens=True)
    completion_tokens = sum(
        1 for t in new_tokens.tolist() if t not in eos_ids and t != backend.tokenizer.pad_token_id
    )
    return output, int(ids.shape[1]), completion_tokens, ended


def _load(
    model: str, adapter: str | None, tiny_base: str | Path | None, device: str, dtype: str
) -> tuple[Any, Any, str, str]:
    """(model, tokenizer, where the weights came from, device), through the training job's loader."""
    import torch

    from cep_core.training.config import TrainConfig
    from cep_core.training.model import load_base, resolve_device
    from cep_core.training.tiny import BUILTIN_TINY

    resolved_device = resolve_device(device)
    if model == BUILTIN_TINY and not (tiny_base and (Path(tiny_base) / "config.json").is_file()):
        raise InputError(
            'builtin:tiny is built per training run: evaluate the run (run = "<run id>"; use_adapter = false '
            "for its untrained base), or give model = the path of a run's tiny-base/ folder",
            field="model",
        )
    bf16 = dtype == "bfloat16" or (
        dtype == "auto" and resolved_device == "cuda" and torch.cuda.is_bf16_supported()
    )
    base, tokenizer, source = load_base(TrainConfig(model=model), Path(tiny_base or "."), [], bf16)
    if dtype == "float16":
        base = base.to(torch.float16)
    if adapter:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise InputError(
                "not a LoRA adapter folder (no adapter_config.json)", path=adapter, field="adapter"
            )
        from peft import PeftModel

        from cep_core.training.model import quiet_peft_deprecations

        with quiet_peft_deprecations():
            base = PeftModel.from_pretrained(base, adapter)
    base.to(resolved_device)
    base.eval()
    tokenizer.padding_side = "left"
    return base, tokenizer, source, resolved_device
