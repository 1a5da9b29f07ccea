"""Training throughput: our trainer path vs TRL's SFTTrainer, same tiny model, data, LoRA and settings, one run.

Both train the built-in tiny model (same saved weights) with the same LoRA config for the same number of
steps on the same tokenised conversations (assistant-only labels), batch size and learning rate. Tokens/s
counts real (non-padding) tokens over the wall time of `train()`. Needs the `bench` extra (trl).

    .venv/bin/python benchmarks/train_throughput.py [--steps 30] [--data builtin:demo]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data", default="builtin:demo")
    parser.add_argument("--max-seq-length", type=int, default=640)
    ns = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cep_core.training.config import TrainConfig
    from cep_core.training.dataset import tokenize_examples
    from cep_core.training.preflight import check_data
    from cep_core.training.tiny import build_bpe_tokenizer, build_tiny_model, tokenizer_corpus

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    config = TrainConfig(device="cpu")
    config.data.sources = [ns.data]
    config.data.cep = "compact"
    config.train.max_steps = ns.steps
    config.train.batch_size = ns.batch_size
    config.train.learning_rate = 1e-2
    config.lora.r, config.lora.alpha, config.lora.dropout = 64, 128, 0.0
    config.lora.modules_to_save = ["lm_head"]
    _check, prepared = check_data(config)
    workdir = Path(tempfile.mkdtemp(prefix="cep-bench-"))
    tokenizer = build_bpe_tokenizer(tokenizer_corpus(ex.messages for ex in prepared.train))
    build_tiny_model(tokenizer).save_pretrained(workdir / "base")
    tokenizer.save_pretrained(workdir / "base")
    tokenizer = AutoTokenizer.from_pretrained(workdir / "base")
    features, _skipped = tokenize_examples(prepared.train, tokenizer, ns.max_seq_length)
    print(
        f"data: {len(features)} conversations, {features.tokens} tokens; {ns.steps} steps of {ns.batch_size}"
    )

    def fresh_model():
        model = AutoModelForCausalLM.from_pretrained(workdir / "base")
        model.config.use_cache = False
        return model

    ours = run_ours(config, fresh_model(), tokenizer, features, workdir / "ours")
    trl = run_trl(config, fresh_model(), tokenizer, features, workdir / "trl")
    print(f"ours: {ours:,.0f} tokens/s")
    print(f"TRL SFTTrainer: {trl:,.0f} tokens/s")
    print(f"ratio ours/TRL: {ours / trl:.2f}")


def _common_args(config, out: Path) -> dict:
    return dict(
        output_dir=str(out),
        per_device_train_batch_size=config.train.batch_size,
        max_steps=config.train.max_steps,
        learning_rate=config.train.learning_rate,
        lr_scheduler_type="cosine",
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=42,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )


def _timed_train(trainer) -> float:
    start = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - start
    return trainer.state.num_input_tokens_seen / elapsed


def run_ours(config, model, tokenizer, features, out: Path) -> float:
    from transformers import TrainingArguments

    from cep_core.training.dataset import make_collator, use_packing
    from cep_core.training.loss import trainer_class
    from cep_core.training.model import apply_lora

    packing = use_packing(config.train.packing, model)
    model = apply_lora(model, config)
    args = TrainingArguments(
        **_common_args(config, out),
        remove_unused_columns=False,
        train_sampling_strategy="random" if packing else "group_by_length",
    )
    trainer = trainer_class()(
        model=model,
        args=args,
        train_dataset=features,
        processing_class=tokenizer,
        data_collator=make_collator(tokenizer, packing),
    )
    return _timed_train(trainer)


def run_trl(config, model, tokenizer, features, out: Path) -> float:
    import datasets
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"input_ids": r["input_ids"], "completion_mask": [int(lab != -100) for lab in r["labels"]]}
        for r in features.rows
    ]
    dataset = datasets.Dataset.from_list(rows)
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules="all-linear",
        modules_to_save=["lm_head"],
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(**_common_args(config, out), completion_only_loss=True, max_length=None, packing=False)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora
    )
    return _timed_train(trainer)


if __name__ == "__main__":
    main()
