"""The causal-LM loss computed from the logits of labelled positions only.

Only the assistant turns carry labels (a few dozen tokens of a prompt of several hundred), yet a stock forward
pass projects every position onto the whole vocabulary (49k entries for SmolLM2, 128k for Llama 3): on a CPU
that projection and its backward were a fifth of a training step. Asking the model for the logits of the
positions whose next token is labelled (`logits_to_keep` with a tensor of positions) gives the same loss —
the same tokens, the same reduction — for a fraction of the work and memory.
"""

from __future__ import annotations

import inspect
from typing import Any

IGNORE_INDEX = -100


def supports_kept_logits(model: Any) -> bool:
    """True when the model's forward takes `logits_to_keep` (transformers' causal LMs do), through peft's wrap."""
    inner = model
    for attr in ("get_base_model",):
        if hasattr(inner, attr):
            inner = getattr(inner, attr)()
    try:
        return "logits_to_keep" in inspect.signature(inner.forward).parameters
    except (TypeError, ValueError):
        return False


def labelled_positions(labels: Any) -> Any:
    """Sequence positions t (over the whole batch) whose next token t+1 is labelled in at least one row."""
    import torch

    shifted = labels[:, 1:] != IGNORE_INDEX
    return torch.nonzero(shifted.any(dim=0), as_tuple=False).squeeze(1)


def kept_logits_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> tuple[Any, Any]:
    """(loss, outputs): cross-entropy of the labelled next tokens, from their logits only.

    The reduction matches transformers' ForCausalLMLoss: a mean over labelled tokens, or their sum divided by
    `num_items_in_batch` when the Trainer passes it (gradient accumulation over uneven batches).
    """
    import torch
    import torch.nn.functional as F

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    positions = labelled_positions(labels)
    outputs = model(**inputs, logits_to_keep=positions, use_cache=False)
    logits = outputs.logits.float()
    targets = labels[:, positions + 1].to(logits.device)
    vocab = logits.shape[-1]
    if num_items_in_batch is not None:
        loss = F.cross_entropy(
            logits.reshape(-1, vocab), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        loss = loss / num_items_in_batch
    else:
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), ignore_index=IGNORE_INDEX)
    return loss, outputs


def trainer_class() -> type:
    """transformers' Trainer with the labelled-positions loss (the stock loss where a model cannot keep logits)."""
    from transformers import Trainer

    class LabelledLogitsTrainer(Trainer):
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if (
                "labels" not in inputs
                or self.compute_loss_func is not None
                or not supports_kept_logits(model)
            ):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # The Trainer treats the loss as scaled for gradient accumulation exactly when the model accepts
            # loss kwargs and a count was given: reduce the same way so the steps it takes are unchanged.
            count = num_items_in_batch if self.model_accepts_loss_kwargs else None
            loss, outputs = kept_logits_loss(model, inputs, count)
            if self.args.average_tokens_across_devices and count is not None:
                tp_size = self.get_tp_size() if hasattr(self, "get_tp_size") else 1
                scale = self.accelerator.num_processes // tp_size
                loss = loss * (scale if self.args.n_gpu <= 1 else self.args.n_gpu)
            return (loss, outputs) if return_outputs else loss

    return LabelledLogitsTrainer
