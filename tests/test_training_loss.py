"""The labelled-positions loss equals the stock causal-LM loss, value and gradients, padded and packed, and the
Trainer that uses it takes the same optimisation steps as the stock Trainer."""

from __future__ import annotations

import pytest
import torch

from cep_core.training.dataset import Features, make_collator
from cep_core.training.labels import IGNORE_INDEX, tokenize_conversation
from cep_core.training.loss import kept_logits_loss, labelled_positions, supports_kept_logits, trainer_class
from cep_core.training.tiny import build_bpe_tokenizer, build_tiny_model

CONVERSATIONS = [
    [
        {"role": "system", "content": "You call tools. Rules: exact names, JSON arguments, closing tags."},
        {"role": "user", "content": "Weather in Oslo tomorrow morning, in celsius please?"},
        {"role": "assistant", "content": '<tool_call name="weather">{"city": "Oslo"}</tool_call>'},
    ],
    [
        {"role": "user", "content": "Convert 12 EUR to JPY."},
        {"role": "assistant", "content": '<tool_call name="fx">{"amount": 12, "to": "JPY"}</tool_call>'},
        {"role": "user", "content": "And to USD?"},
        {"role": "assistant", "content": '<tool_call name="fx">{"amount": 12, "to": "USD"}</tool_call>'},
    ],
    [
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "None of the available functions can help with this request."},
    ],
]


@pytest.fixture(scope="module")
def tiny():
    texts = [m["content"] for conv in CONVERSATIONS for m in conv] * 10
    tokenizer = build_bpe_tokenizer(texts, vocab_size=300)
    features = [tokenize_conversation(tokenizer, conv) for conv in CONVERSATIONS]
    rows = [{"input_ids": f.input_ids, "labels": f.labels} for f in features]
    return tokenizer, rows


def _model(tokenizer):
    model = build_tiny_model(tokenizer, seed=3)
    model.config.use_cache = False
    return model


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_loss_and_gradients_equal_the_stock_loss(tiny, packing):
    tokenizer, rows = tiny
    batch = make_collator(tokenizer, packing=packing)(rows)
    model = _model(tokenizer)
    assert supports_kept_logits(model)

    stock = model(**batch).loss
    stock.backward()
    stock_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    kept, outputs = kept_logits_loss(model, batch)
    kept.backward()
    torch.testing.assert_close(kept, stock, atol=1e-5, rtol=1e-5)
    for name, grad in stock_grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-5, rtol=1e-4)
    # Only the labelled positions were projected onto the vocabulary.
    labelled = int((batch["labels"][:, 1:] != IGNORE_INDEX).any(0).sum())
    assert outputs.logits.shape[1] == labelled < batch["input_ids"].shape[1]


def test_sum_reduction_over_a_token_count_matches_the_stock_loss(tiny):
    tokenizer, rows = tiny
    batch = make_collator(tokenizer, packing=False)(rows)
    model = _model(tokenizer)
    count = torch.tensor(int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()) * 2)
    stock = model(**batch, num_items_in_batch=count).loss
    kept, _ = kept_logits_loss(model, batch, count)
    torch.testing.assert_close(kept, stock, atol=1e-5, rtol=1e-5)


def test_positions_are_those_whose_next_token_is_labelled():
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 5, 6], [IGNORE_INDEX, 7, IGNORE_INDEX, IGNORE_INDEX]])
    assert labelled_positions(labels).tolist() == [0, 1, 2]


def test_the_trainer_takes_the_same_steps_as_the_stock_trainer(tiny, tmp_path):
    from transformers import Trainer, TrainingArguments

    tokenizer, rows = tiny
    losses = {}
    for name, cls in (("stock", Trainer), ("kept", trainer_class())):
        model = _model(tokenizer)
        args = TrainingArguments(
            output_dir=str(tmp_path / name),
            per_device_train_batch_size=2,
            gradient_accumulation_steps=2,
            max_steps=3,
            learning_rate=1e-2,
            logging_steps=1,
            report_to="none",
            use_cpu=True,
            save_strategy="no",
            seed=0,
            data_seed=0,
            disable_tqdm=True,
            remove_unused_columns=False,
        )
        trainer = cls(
            model=model,
            args=args,
            train_dataset=Features(rows * 4),
            data_collator=make_collator(tokenizer, packing=False),
        )
        trainer.train()
        losses[name] = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses["kept"]) == 3
    assert losses["kept"] == pytest.approx(losses["stock"], rel=1e-4)
