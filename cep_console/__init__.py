"""The CEP Console: a Textual app over cep_core for GPUs, runs, evaluations and traces (`cep-console`).

Nothing in this package imports torch, transformers, peft or datasets: heavy work runs in job subprocesses.
"""
