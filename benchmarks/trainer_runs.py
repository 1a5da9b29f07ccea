"""The two trainers the training benchmarks time, on the same model, features, LoRA and settings:
the product's (cep_core.training: its Trainer class, collator, grouping by length) and TRL's SFTTrainer with
a LoRA config equal to the product's (same modules, same layers, same modules_to_save)."""

from __future__ import annotations

import time
from pathlib import Path


def common_args(config, out: Path, logging_steps: int = 10) -> dict:
    return dict(
        output_dir=str(out),
        per_device_train_batch_size=config.train.batch_size,
        max_steps=config.train.max_steps,
        learning_rate=config.train.learning_rate,
        lr_scheduler_type="cosine",
        logging_steps=logging_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=42,
        data_seed=42,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )


def timed_train(trainer) -> float:
    """Non-padding tokens per second over the wall time of `train()`."""
    start = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - start
    return trainer.state.num_input_tokens_seen / elapsed


def run_ours(config, model, tokenizer, features, out: Path) -> float:
    from transformers import TrainingArguments

    from cep_core.training.dataset import make_collator, use_packing
    from cep_core.training.job import checkpointing_args
    from cep_core.training.loss import trainer_class
    from cep_core.training.model import apply_lora, quiet_peft_deprecations

    packing = use_packing(config.train.packing, model)
    with quiet_peft_deprecations():
        model = apply_lora(model, config)
    args = TrainingArguments(
        **common_args(config, out),
        **checkpointing_args(TrainingArguments, config.train.gradient_checkpointing),
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
    return timed_train(trainer)


def run_trl(config, model, tokenizer, features, out: Path) -> float:
    import datasets
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from cep_core.training.model import linear_module_names, top_layer_indices

    rows = [
        {"input_ids": r["input_ids"], "completion_mask": [int(lab != -100) for lab in r["labels"]]}
        for r in features.rows
    ]
    layers = top_layer_indices(model, config.lora.top_layers)
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=linear_module_names(model) if layers else "all-linear",
        layers_to_transform=layers,
        modules_to_save=list(config.lora.modules_to_save) or None,
        task_type="CAUSAL_LM",
    )
    # SFTConfig turns activation checkpointing on by default (TRL 1.x): recomputing every layer in the backward
    # pass would time a different algorithm. Both trainers run with the run config's setting (off by default).
    args = SFTConfig(
        **common_args(config, out),
        completion_only_loss=True,
        max_length=None,
        packing=False,
        gradient_checkpointing=config.train.gradient_checkpointing,
    )
    assert getattr(args, "activation_checkpointing", args.gradient_checkpointing) == (
        config.train.gradient_checkpointing
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
    )
    return timed_train(trainer)
