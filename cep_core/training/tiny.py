"""The built-in tiny model (`model = "builtin:tiny"`): a small Llama built locally (about 250k parameters), no download.

A byte-level BPE tokenizer is trained on the fly on the training text (so common pieces of the tool-call format
become single tokens and short sequences), with the ChatML template; the model is a three-layer Llama of a few
hundred thousand parameters, initialised from a fixed seed. The whole pipeline then runs on a laptop CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cep_core.training.templates import CHATML_SPECIALS, CHATML_TEMPLATE

BUILTIN_TINY = "builtin:tiny"
TINY_VOCAB = 1024
# Pieces of the call format kept whole (as Qwen's tokenizer keeps <tool_call>): the format is then a handful
# of tokens the tiny model can learn in a minute, and decoding never splits a tag.
FORMAT_TOKENS = (
    '<tool_call name="',
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<tools>",
    "</tools>",
)
TINY_DIMS = {
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
# A wider initialisation than Llama's 0.02 gives the frozen random base sharper attention patterns and larger
# random features for LoRA to steer; the output layer is untied so a run can train it (lora.modules_to_save).
TINY_INIT_RANGE = 0.1


def build_bpe_tokenizer(
    texts: Iterable[str],
    *,
    chat_template: str = CHATML_TEMPLATE,
    specials: dict[str, Any] | None = None,
    vocab_size: int = TINY_VOCAB,
    format_tokens: tuple[str, ...] = FORMAT_TOKENS,
) -> Any:
    """A byte-level BPE tokenizer trained on `texts`, wrapped as a transformers fast tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = specials or CHATML_SPECIALS
    extra = list(specials["extra"])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=extra,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in format_tokens])
    kwargs: dict[str, Any] = {"eos_token": specials["eos"], "pad_token": specials["pad"]}
    if specials.get("bos"):
        kwargs["bos_token"] = specials["bos"]
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    wrapped.chat_template = chat_template
    return wrapped


def build_tiny_model(tokenizer: Any, seed: int = 0) -> Any:
    """A Llama-architecture causal LM sized for CPU tests, with the tokenizer's vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        initializer_range=TINY_INIT_RANGE,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        attn_implementation="sdpa",  # the config's public argument for the kernel (not the private attribute)
        **TINY_DIMS,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def tokenizer_corpus(conversations: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    """The text the tiny tokenizer learns from: every message's content."""
    for messages in conversations:
        for message in messages:
            content = message.get("content")
            if isinstance(content, str) and content:
                yield content
