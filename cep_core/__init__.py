"""cep_core — the engine of CEP Console: the CEP, parsing and scoring, jobs, GPU health and the tracer.

Nothing here imports torch, transformers, peft or datasets at module level; the heavy stack is only
imported inside the training and evaluation job modules, so the console and the tracer stay light.
"""

__version__ = "0.1.0"
