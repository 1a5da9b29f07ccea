"""Tokenisation with assistant-only labels, for any chat template.

Many templates have no `{% generation %}` markers (Phi-4, Mistral), so the assistant spans are derived by
rendering the conversation prefix by prefix: the text of `messages[:i]` with the generation prompt ends where
assistant turn i starts, and the text of `messages[:i+1]` ends where it ends (its end-of-turn token included,
the template's separator whitespace after it not). Character spans become token labels through the fast
tokenizer's offset mapping, so no token id is ever guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IGNORE_INDEX = -100


@dataclass(slots=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    spans: list[tuple[int, int]] = field(default_factory=list)  # assistant character spans in `text`
    text: str = ""


class LabelError(ValueError):
    """A conversation that cannot be tokenised for training; `reason` is the skip-counter key."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


def render(tokenizer: Any, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def assistant_spans(tokenizer: Any, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant turn in it."""
    full = render(tokenizer, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True)
        through = render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (full.startswith(through) and through.startswith(before)):
            # The template renders earlier turns differently once later ones exist (e.g. it drops reasoning):
            # this turn's span cannot be placed, so it is left unlabelled.
            continue
        end = len(through.rstrip())
        if end > len(before):
            spans.append((len(before), end))
    return full, spans


def tokenize_conversation(
    tokenizer: Any, messages: list[dict[str, Any]], max_length: int | None = None
) -> Tokenized:
    """input_ids and labels (token ids on assistant turns, IGNORE_INDEX elsewhere); raises LabelError."""
    text, spans = assistant_spans(tokenizer, messages)
    if not spans:
        raise LabelError("no_assistant_span", "no assistant turn could be located in the rendered template")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(enc["input_ids"])
    if max_length is not None and len(input_ids) > max_length:
        raise LabelError("over_length", f"{len(input_ids)} tokens > max_seq_length {max_length}")
    labels = [IGNORE_INDEX] * len(input_ids)
    for index, (start, end) in enumerate(enc["offset_mapping"]):
        if end <= start:
            continue
        if any(start < s_end and end > s_start for s_start, s_end in spans):
            labels[index] = input_ids[index]
    return Tokenized(input_ids=input_ids, labels=labels, spans=spans, text=text)


def labelled_segments(tokenizer: Any, tokenized: Tokenized) -> list[str]:
    """The decoded runs of labelled tokens: what the model is trained to write."""
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(tokenized.input_ids, tokenized.labels, strict=True):
        on = label != IGNORE_INDEX
        if on and not previous:
            runs.append([])
        if on:
            runs[-1].append(token)
        previous = on
    return [tokenizer.decode(run) for run in runs]
