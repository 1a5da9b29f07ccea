"""Job control: launching, following, stopping and auto-resuming training and evaluation runs.

Backends (local subprocess, Slurm) start the same job command; the registry in cep.db records every job and
every state transition; the policy decides what happens to a crashed run.
"""
