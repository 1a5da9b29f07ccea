"""Prepared conversations to training features, and the collator that batches them (packed or padded)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cep_core.data.prepare import Example
from cep_core.training.labels import LabelError, tokenize_conversation
from cep_core.training.templates import tool_role_for

# Attention implementations that handle padding-free packing (position ids restarting per sequence) correctly;
# the varlen kernels among them also make it cheaper. sdpa and eager build a block-diagonal mask over the whole
# packed row, which is correct but quadratic in its length (3x slower than padding for the tiny model on a CPU),
# so `auto` packs only with the varlen kernels.
PACKING_ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
PACKING_EFFICIENT = ("flash_attention_2", "flash_attention_3")


class Features:
    """A list of {input_ids, labels} dicts, as a map-style dataset for the Trainer."""

    def __init__(self, rows: list[dict[str, list[int]]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.rows[index]

    @property
    def tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)


def with_tool_role(messages: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return [{**m, "role": role} if m.get("role") == "tool" else m for m in messages]


def tokenize_examples(
    examples: list[Example], tokenizer: Any, max_length: int
) -> tuple[Features, Counter[str]]:
    """Features for every example that fits; the others counted by reason (over_length, no_assistant_span, …)."""
    role = tool_role_for(getattr(tokenizer, "chat_template", None))
    rows: list[dict[str, list[int]]] = []
    skipped: Counter[str] = Counter()
    for example in examples:
        try:
            tok = tokenize_conversation(tokenizer, with_tool_role(example.messages, role), max_length)
        except LabelError as err:
            skipped[err.reason] += 1
            continue
        except Exception:  # a template that raises on this conversation (e.g. role order rules)
            skipped["template_error"] += 1
            continue
        rows.append({"input_ids": tok.input_ids, "labels": tok.labels})
    return Features(rows), skipped


def attention_of(model: Any) -> str | None:
    """The attention kernel the model runs. transformers (5.24 checked) has no public reader: a public
    `attn_implementation` is taken where a version offers one, else the private `_attn_implementation`."""
    config = getattr(model, "config", None)
    for name in ("attn_implementation", "_attn_implementation"):
        value = getattr(config, name, None)
        if isinstance(value, str):
            return value
    return None


def use_packing(setting: str, model: Any) -> bool:
    """`auto` packs where the attention kernel makes it pay (varlen flash attention); `true` packs wherever it is
    correct and fails where it is not; `false` pads."""
    if setting == "false":
        return False
    impl = attention_of(model)
    if setting == "auto":
        return impl in PACKING_EFFICIENT
    supported = impl in PACKING_ATTENTION
    if not supported:
        from cep_core.training.failures import ConfigError

        raise ConfigError(
            f"packing needs one of {', '.join(PACKING_ATTENTION)}; this model uses {impl}",
            field="train.packing",
        )
    return supported


def make_collator(tokenizer: Any, packing: bool) -> Any:
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if packing:
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
