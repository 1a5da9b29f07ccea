"""A merged Llama-architecture folder as one GGUF file (f16 weights), for llama.cpp-style runtimes.

Written with the `gguf` package (the llama.cpp project's own writer), in the layout its converter produces:
llama.* hyper-parameters, the BPE vocabulary with merges, special token ids and the chat template, tensors
under GGUF names, and q/k projection rows reordered for GGUF's rotary layout. Only Llama-architecture models
(SmolLM2, Llama, the built-in tiny model) are written; other architectures are refused with a clear message.
The test suite reads every file back with transformers' GGUF loader and compares logits with the folder's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cep_core.errors import InputError

GGUF_NAME = "model.gguf"
SUPPORTED = ("llama", "mistral")
_LAYER_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_TOKEN_NORMAL, _TOKEN_CONTROL, _TOKEN_USER_DEFINED = 1, 3, 4
# llama.cpp picks a pre-tokenizer by name; the ones we can name from the model we exported.
_PRE_TOKENIZERS = {"builtin:smollm2": "smollm"}


def write_gguf(folder: str | Path, out: str | Path | None = None, pre_tokenizer: str | None = None) -> Path:
    """Write FOLDER (a Hugging Face Llama folder, e.g. from `cep export`) as a GGUF file; returns its path."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file
    from transformers import AutoConfig

    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder)
    if config.model_type not in SUPPORTED:
        raise InputError(
            f"GGUF export writes Llama-architecture models; this one is {config.model_type!r} "
            "(convert the merged folder with llama.cpp's convert_hf_to_gguf.py instead)",
            path=folder,
        )
    weights: dict[str, Any] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        weights.update(load_file(shard))
    if not weights:
        raise InputError("no *.safetensors weights", path=folder)
    path = Path(out) if out else folder / GGUF_NAME
    tmp = path.with_name(path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch="llama")
    _write_hparams(writer, config)
    _write_tokenizer(writer, folder, pre_tokenizer or _pre_tokenizer(folder))
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    for name, tensor in _gguf_tensors(weights, config):
        array = tensor.float().numpy()
        if name.endswith("attn_q.weight"):
            array = _rotary_rows(array, heads, heads)
        elif name.endswith("attn_k.weight"):
            array = _rotary_rows(array, heads, kv_heads)
        array = array.astype(np.float16 if array.ndim == 2 else np.float32)
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def _write_hparams(writer: Any, config: Any) -> None:
    import gguf

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta") if isinstance(rope, dict) else None
    writer.add_name(str(getattr(config, "name_or_path", "") or "model"))
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(theta or getattr(config, "rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)


def _write_tokenizer(writer: Any, folder: Path, pre: str) -> None:
    """The BPE vocabulary, merges and special tokens from tokenizer.json, the chat template from the folder."""
    from transformers import AutoTokenizer

    try:
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"GGUF export needs a fast tokenizer (tokenizer.json): {exc}", path=folder) from exc
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        raise InputError(f"GGUF export writes BPE tokenizers; this one is {model.get('type')!r}", path=folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    vocab: dict[str, int] = dict(model["vocab"])
    added = {t["content"]: t for t in spec.get("added_tokens", [])}
    for content, token in added.items():
        vocab[content] = token["id"]
    size = max(max(vocab.values()) + 1, len(tokenizer))
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [_TOKEN_USER_DEFINED] * size
    for content, index in vocab.items():
        tokens[index] = content
        types[index] = _TOKEN_NORMAL
    for token in added.values():
        types[token["id"]] = _TOKEN_CONTROL if token.get("special") else _TOKEN_USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for setter, token_id in (
        (writer.add_bos_token_id, tokenizer.bos_token_id),
        (writer.add_eos_token_id, tokenizer.eos_token_id),
        (writer.add_unk_token_id, tokenizer.unk_token_id),
        (writer.add_pad_token_id, tokenizer.pad_token_id),
    ):
        if token_id is not None:
            setter(int(token_id))
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _pre_tokenizer(folder: Path) -> str:
    from cep_core.export.merge import read_export_meta

    meta = read_export_meta(folder) or {}
    return _PRE_TOKENIZERS.get(str(meta.get("model")), "default")


def _gguf_tensors(weights: dict[str, Any], config: Any) -> list[tuple[str, Any]]:
    out = []
    prefix = "model."
    for name, tensor in weights.items():
        if name == f"{prefix}embed_tokens.weight":
            out.append(("token_embd.weight", tensor))
        elif name == f"{prefix}norm.weight":
            out.append(("output_norm.weight", tensor))
        elif name == "lm_head.weight":
            if not getattr(config, "tie_word_embeddings", False):
                out.append(("output.weight", tensor))
        elif name.startswith(f"{prefix}layers."):
            index, _, rest = name[len(prefix) + len("layers.") :].partition(".")
            module = rest.removesuffix(".weight")
            if module not in _LAYER_TENSORS or not rest.endswith(".weight"):
                raise InputError(f"tensor {name} has no GGUF name (an unsupported Llama variant)")
            out.append((f"blk.{index}.{_LAYER_TENSORS[module]}.weight", tensor))
        elif name.endswith("rotary_emb.inv_freq"):
            continue
        else:
            raise InputError(f"tensor {name} has no GGUF name (an unsupported Llama variant)")
    return out


def _rotary_rows(weights: Any, heads: int, kv_heads: int) -> Any:
    """Rows of a q/k projection reordered from Hugging Face's rotary layout (two halves per head) to GGUF's
    (interleaved pairs), as llama.cpp expects: within each head, row i of the first half and row i of the
    second half become neighbours."""
    groups = kv_heads if kv_heads != heads else heads
    rows = weights.shape[0]
    return (
        weights.reshape(groups, 2, rows // groups // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )
