"""`cep export`: a run's adapter merged into its base is a standalone folder plain transformers loads and that
answers what the adapter answered; GGUF files read back with transformers' own GGUF loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cep_core.errors import InputError
from cep_core.evaluation.backends import Request
from cep_core.export import EXPORT_META
from cep_core.export.merge import export_run, read_export_meta
from cep_core.prompts.prefix import apply_cep, get_cep

PROMPTS = [
    [{"role": "user", "content": "What is the weather in Oslo?"}],
    [{"role": "user", "content": "Convert 12 EUR to JPY."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Book a table for two at 8."}],
]


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> Path:
    return export_run(tiny_run, tmp_path_factory.mktemp("exports") / "merged").folder


def test_the_merged_folder_loads_without_peft_and_answers_as_the_adapter(tiny_run, exported):
    from transformers import AutoModelForCausalLM

    from cep_core.evaluation.backends.hf import HfBackend

    names = {p.name for p in exported.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", EXPORT_META} <= names
    assert not any(n.startswith("adapter") for n in names)  # weights merged, not an adapter beside a base
    plain = AutoModelForCausalLM.from_pretrained(exported)
    assert type(plain).__name__ == "LlamaForCausalLM"
    cep = get_cep("compact")
    requests = [Request(str(i), apply_cep(p, cep)) for i, p in enumerate(PROMPTS)]
    merged = HfBackend(str(exported), max_new_tokens=24, device="cpu").generate(requests)
    adapter = HfBackend(
        "builtin:tiny",
        str(tiny_run / "adapter"),
        tiny_base=tiny_run / "tiny-base",
        max_new_tokens=24,
        device="cpu",
    ).generate(requests)
    assert [g.output for g in merged] == [g.output for g in adapter]
    base = HfBackend(str(tiny_run / "tiny-base"), max_new_tokens=24, device="cpu").generate(requests)
    assert [g.output for g in base] != [g.output for g in adapter]  # the adapter changed something to keep


def test_the_export_records_its_run_base_and_cep(tiny_run, exported):
    meta = read_export_meta(exported)
    assert meta["run_id"] == tiny_run.name and meta["model"] == "builtin:tiny"
    assert meta["base_model"] == str(tiny_run / "tiny-base")
    assert meta["cep"]["variant"] == "compact" and meta["cep"]["text"] == get_cep("compact").text
    assert len(meta["adapter_sha256"]) == 64 and meta["max_logit_difference"] < 1e-3
    assert meta["versions"]["peft"] and meta["versions"]["transformers"]
    assert oct(exported.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in exported.iterdir() if p.is_file())


def test_an_existing_folder_is_kept_unless_forced(tiny_run, tmp_path):
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError) as err:
        export_run(tiny_run, out)
    assert str(out) in str(err.value) and "--force" in str(err.value)
    assert (out / "keep.txt").read_text() == "mine"
    export_run(tiny_run, out, force=True)
    assert not (out / "keep.txt").exists() and read_export_meta(out)["run_id"] == tiny_run.name
    assert not list(tmp_path.glob(".merged.tmp-*"))  # nothing half-written left beside it


def test_a_run_without_an_adapter_is_refused_by_name(tiny_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(tiny_run / "run.toml", unfinished / "run.toml")
    with pytest.raises(InputError) as err:
        export_run(unfinished, tmp_path / "out")
    assert "unfinished has no adapter yet" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_export_prints_what_it_wrote(tiny_run, tmp_path, capsys):
    from cep_core.cli import main as cep

    assert cep(["export", str(tiny_run), "--out", str(tmp_path / "m"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["folder"] == str(tmp_path / "m") and out["cep_variant"] == "compact" and out["gguf"] is None
    assert cep(["export", str(tiny_run), "--out", str(tmp_path / "m")]) == 2
    assert "--force" in capsys.readouterr().err


def test_gguf_reads_back_with_the_same_tokens_and_logits(exported, tmp_path):
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cep_core.export.gguf import write_gguf

    path = write_gguf(exported, tmp_path / "tiny.gguf")
    hf_model = AutoModelForCausalLM.from_pretrained(exported)
    hf_tok = AutoTokenizer.from_pretrained(exported)
    gguf_model = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name)
    gguf_tok = AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    for messages in PROMPTS:
        messages = [*messages, {"role": "assistant", "content": "It is sunny; no call needed."}]
        ids = hf_tok.apply_chat_template(messages, return_tensors="pt", return_dict=True)
        again = gguf_tok.apply_chat_template(messages, return_tensors="pt", return_dict=True)
        assert torch.equal(ids["input_ids"], again["input_ids"])
        call = hf_tok.apply_chat_template(
            [*messages[:-1], {"role": "assistant", "content": '<tool_call name="f">{"x": 1}</tool_call>'}],
            return_tensors="pt",
            return_dict=True,
        )
        for batch in (ids, call):
            with torch.no_grad():
                expected = hf_model(**batch).logits
                got = gguf_model(**batch).logits
            # f16 weights: close, and the same next token wherever the top two are not a near tie (a wrong
            # rotary layout or tensor name is far from both).
            assert torch.allclose(got, expected, atol=5e-2, rtol=5e-2), (got - expected).abs().max()
            top2 = expected.topk(2, dim=-1).values
            clear = (top2[..., 0] - top2[..., 1]) > 0.1
            assert clear.sum() > clear.numel() // 2
            assert torch.equal(got.argmax(-1)[clear], expected.argmax(-1)[clear])
    # The tiny tokenizer's whole-tag tokens are written as llama.cpp matches them: raw text, user-defined.
    # (transformers' own GGUF reader re-adds only user-defined tokens without spaces, hence plain text above.)
    reader = gguf.GGUFReader(path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    tag = hf_tok.convert_tokens_to_ids('<tool_call name="')
    assert tokens[tag] == '<tool_call name="' and types[tag] == 4
    assert types[hf_tok.eos_token_id] == 3 and reader.fields["tokenizer.chat_template"].contents()


def test_gguf_refuses_other_architectures(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from cep_core.export.gguf import write_gguf

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=50)).save_pretrained(tmp_path)
    with pytest.raises(InputError) as err:
        write_gguf(tmp_path)
    assert "'gpt2'" in str(err.value) and "convert_hf_to_gguf" in str(err.value)
    assert not (tmp_path / "model.gguf").exists()
