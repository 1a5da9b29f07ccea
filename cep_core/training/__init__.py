"""The LoRA training job (run with `python -m cep_core.training RUN_DIR`).

Submodules that import torch/transformers do so inside functions or are only imported by the job itself;
`config`, `preflight` (its module level), `checkpoints` and `failures` stay light for the CLI and console.
"""
