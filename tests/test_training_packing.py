"""Padding-free packing: position ids restart per sequence and the packed logits equal the padded ones."""

from __future__ import annotations

import pytest
import torch

from cep_core.training.dataset import make_collator, use_packing
from cep_core.training.failures import ConfigError
from cep_core.training.labels import IGNORE_INDEX, tokenize_conversation
from cep_core.training.tiny import build_bpe_tokenizer, build_tiny_model

CONVERSATIONS = [
    [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": '<tool_call name="w">{"city": "Oslo"}</tool_call>'},
    ],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Convert 12 EUR to JPY please."},
        {"role": "assistant", "content": '<tool_call name="fx">{"amount": 12, "to": "JPY"}</tool_call>'},
    ],
]


@pytest.fixture(scope="module")
def tiny():
    texts = [m["content"] for conv in CONVERSATIONS for m in conv] * 10
    tokenizer = build_bpe_tokenizer(texts, vocab_size=300)
    model = build_tiny_model(tokenizer).eval()
    features = [tokenize_conversation(tokenizer, conv) for conv in CONVERSATIONS]
    return tokenizer, model, [{"input_ids": f.input_ids, "labels": f.labels} for f in features]


def test_packed_batch_restarts_positions_and_matches_padded_logits(tiny):
    tokenizer, model, features = tiny
    packed = make_collator(tokenizer, packing=True)(features)
    padded = make_collator(tokenizer, packing=False)(features)
    lengths = [len(f["input_ids"]) for f in features]
    assert packed["input_ids"].shape == (1, sum(lengths))
    assert packed["position_ids"][0].tolist() == list(range(lengths[0])) + list(range(lengths[1]))
    assert "attention_mask" not in packed
    # The first label of every packed sequence is masked so no loss crosses a boundary.
    assert packed["labels"][0, lengths[0]].item() == IGNORE_INDEX
    with torch.no_grad():
        # use_cache=False as in training (the job sets it): transformers only reads packed position ids then.
        packed_logits = model(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False
        ).logits[0]
        padded_logits = model(
            input_ids=padded["input_ids"], attention_mask=padded["attention_mask"], use_cache=False
        ).logits
    torch.testing.assert_close(
        packed_logits[: lengths[0]], padded_logits[0, : lengths[0]], atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(
        packed_logits[lengths[0] :], padded_logits[1, : lengths[1]], atol=1e-5, rtol=1e-4
    )


def test_packing_policy_follows_the_attention_implementation(tiny):
    _tokenizer, model, _features = tiny
    assert model.config._attn_implementation == "sdpa"
    assert use_packing("auto", model) is False  # correct with sdpa, but quadratic: padding is faster
    assert use_packing("true", model) is True
    assert use_packing("false", model) is False
    model.config._attn_implementation = "flash_attention_2"
    try:
        assert use_packing("auto", model) is True
        model.config._attn_implementation = "some_kernel"
        with pytest.raises(ConfigError, match="packing needs"):
            use_packing("true", model)
    finally:
        model.config._attn_implementation = "sdpa"
