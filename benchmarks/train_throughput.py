"""Training throughput: our trainer path vs TRL's SFTTrainer, same tiny model, data, LoRA and settings, one run.

Both train the built-in tiny model (same saved weights) with the same LoRA config for the same number of
steps on the same tokenised conversations (assistant-only labels), batch size and learning rate. Tokens/s
counts real (non-padding) tokens over the wall time of `train()`. Needs the `bench` extra (trl).

    .venv/bin/python benchmarks/train_throughput.py [--steps 30] [--data builtin:demo]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from trainer_runs import run_ours, run_trl  # noqa: E402


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


if __name__ == "__main__":
    main()
