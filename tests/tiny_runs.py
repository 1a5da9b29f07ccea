"""Real training runs of the built-in tiny model for tests: a config and `cep train` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY = """name = "{name}"
model = "builtin:tiny"
device = "cpu"
[data]
sources = ["builtin:sample"]
max_rows = 40
[lora]
r = 4
alpha = 8
[train]
max_steps = {steps}
batch_size = 2
max_seq_length = 2048
save_steps = {save}
save_total_limit = 2
logging_steps = 1
"""


def tiny_config(path: Path, name: str = "tiny", steps: int = 2, save: int = 2) -> Path:
    path.write_text(TINY.format(name=name, steps=steps, save=save))
    return path


def cep_args(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cep_core.cli", "--home", str(home), *args]


def start_train(home: Path, config: Path) -> subprocess.Popen:
    """`cep train CONFIG` running in the background, as in a user's terminal."""
    return subprocess.Popen(
        cep_args(home, "train", str(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
