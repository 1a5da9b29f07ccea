"""Generation for `cep serve`: the evaluation's hf backend (transformers, optional LoRA adapter), so a served
model answers exactly what `cep eval` measured. Heavy imports happen when the engine is built."""

from __future__ import annotations

from typing import Any

from cep_core.serve.chat_api import ChatRequest, Completion, apply_stop
from cep_core.serve.target import ServeTarget


class TransformersEngine:
    name = "transformers"

    def __init__(
        self, target: ServeTarget, *, device: str = "auto", dtype: str = "auto", max_new_tokens: int = 512
    ):
        from cep_core.evaluation.backends.hf import HfBackend

        self.backend = HfBackend(
            target.model,
            target.adapter,
            tiny_base=target.tiny_base,
            batch_size=1,
            max_new_tokens=max_new_tokens,
            device=device,
            dtype=dtype,
        )

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, **self.backend.describe()}

    def __call__(self, request: ChatRequest) -> Completion:
        from cep_core.evaluation.backends.hf import complete_one

        text, prompt_tokens, completion_tokens, ended = complete_one(
            self.backend,
            request.messages,
            max_new_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
        )
        text, cut = apply_stop(text, request.stop)
        return Completion(text, prompt_tokens, completion_tokens, "stop" if ended or cut else "length")


class VllmEngine:
    """vLLM's offline engine on a GPU host: the same prompt text as the transformers engine (the tokenizer's
    chat template, rendered by the hf backend's rules), the adapter through a LoRARequest.

    Not exercised by the test suite: CI and the development machines have no GPU (see docs/serving.md)."""

    name = "vllm"

    def __init__(self, target: ServeTarget, *, max_new_tokens: int = 512, lora_rank: int = 64):
        from transformers import AutoTokenizer
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        from cep_core.builtin_models import resolve_model

        model = (
            str(target.tiny_base) if target.model.startswith("builtin:tiny") else resolve_model(target.model)
        )
        self.tokenizer = AutoTokenizer.from_pretrained(target.adapter or model)
        self.llm = LLM(model=model, enable_lora=bool(target.adapter), max_lora_rank=lora_rank)
        self.lora = LoRARequest("adapter", 1, target.adapter) if target.adapter else None
        self.max_new_tokens = max_new_tokens
        self.model = model

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "model": self.model,
            "adapter": self.lora.lora_path if self.lora else None,
        }

    def __call__(self, request: ChatRequest) -> Completion:
        from vllm import SamplingParams

        from cep_core.training.dataset import with_tool_role
        from cep_core.training.templates import tool_role_for

        role = tool_role_for(getattr(self.tokenizer, "chat_template", None))
        prompt = self.tokenizer.apply_chat_template(
            with_tool_role(request.messages, role), tokenize=False, add_generation_prompt=True
        )
        params = SamplingParams(
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens or self.max_new_tokens,
            stop=request.stop or None,
        )
        out = self.llm.generate([prompt], params, lora_request=self.lora, use_tqdm=False)[0]
        choice = out.outputs[0]
        finish = "length" if choice.finish_reason == "length" else "stop"
        return Completion(choice.text, len(out.prompt_token_ids), len(choice.token_ids), finish)


def vllm_available() -> bool:
    """vLLM is importable and a CUDA device is there (vLLM's engine needs one)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def build_engine(target: ServeTarget, engine: str = "auto", **settings: Any) -> Any:
    """The engine asked for: vllm, transformers, or auto (vLLM where it is installed on a GPU host)."""
    from cep_core.errors import InputError

    if engine == "vllm" or (engine == "auto" and vllm_available()):
        if not vllm_available():
            raise InputError(
                "--engine vllm needs vLLM installed on a host with a CUDA GPU (pip install vllm); "
                "use --engine transformers here",
                field="engine",
            )
        return VllmEngine(target, max_new_tokens=settings.get("max_new_tokens", 512))
    return TransformersEngine(target, **settings)
