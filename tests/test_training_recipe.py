"""The CPU recipe's knobs: LoRA on the top layers only (the backward pass stops there), and its config checks."""

from __future__ import annotations

import pytest

from cep_core.errors import InputError
from cep_core.training.config import TrainConfig, config_from_dict
from cep_core.training.model import apply_lora, linear_module_names, top_layer_indices
from cep_core.training.tiny import build_bpe_tokenizer, build_tiny_model


@pytest.fixture
def tiny_model():
    tokenizer = build_bpe_tokenizer(
        ["a tool call", '<tool_call name="f">{}</tool_call>'] * 20, vocab_size=300
    )
    return build_tiny_model(tokenizer)


def test_top_layers_adapt_only_the_top_of_the_stack(tiny_model):
    config = TrainConfig()
    config.lora.top_layers = 1
    linear = set(linear_module_names(tiny_model))
    model = apply_lora(tiny_model, config)
    adapted = {n.split(".layers.")[1].split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert adapted == {"2"}  # three layers: only the last one
    kinds = {n.split(".")[-4] for n, p in model.named_parameters() if p.requires_grad}
    assert kinds == linear == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_layer_choice_edges(tiny_model):
    assert top_layer_indices(tiny_model, 0) is None
    assert top_layer_indices(tiny_model, 3) is None  # all of them: the same as no restriction
    assert top_layer_indices(tiny_model, 2) == [1, 2]
    assert "lm_head" not in linear_module_names(tiny_model) and "q_proj" in linear_module_names(tiny_model)


def test_negative_top_layers_is_refused_by_name():
    with pytest.raises(InputError) as err:
        config_from_dict({"lora": {"top_layers": -1}}, "run.toml")
    assert err.value.field == "lora.top_layers" and "run.toml" in str(err.value)
