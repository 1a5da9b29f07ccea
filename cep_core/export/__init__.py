"""Adapters that leave the product: `cep export RUN` merges a run's LoRA adapter into its base model.

- merge.py: base + adapter -> one standalone Hugging Face folder (merge_and_unload) that plain transformers,
  vLLM and `cep serve` load, with `cep-export.json` saying where it came from and which CEP it expects;
- gguf.py: that folder as one GGUF file for llama.cpp-style runtimes (Llama-architecture models).
"""

EXPORT_META = "cep-export.json"
