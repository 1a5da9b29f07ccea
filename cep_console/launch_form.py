"""The launch form's logic, apart from its widgets: fields -> a validated config file -> pre-flight -> start.

`LaunchRequest` holds what the user typed; `write_config` validates it through cep_core's TrainConfig (errors
name the field) and writes the TOML the run starts from; `run_checks` runs `cep train --check` in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.prompts.prefix import NO_CEP, VARIANTS
from cep_core.training.config import TrainConfig

CEP_VARIANTS = (*VARIANTS, NO_CEP)  # the engine's built-in prefixes, and training without one
BACKENDS = ("local", "slurm")
PREFLIGHT_TIMEOUT_S = 180
FORM = "launch form"  # what errors name as their "file"


SOURCE_SEPARATOR = ", "


def split_sources(text: str) -> list[str]:
    """The dataset field's sources: separated by a comma and a space (or a semicolon), so a comma without a
    space stays inside one source (`bfcl:simple_python,multiple` is one source of two BFCL categories)."""
    return [s.strip() for s in re.split(r",\s+|;", text) if s.strip()]


# The form starts from the engine's defaults, so a blank run is what `cep train` runs.
_DEFAULT = TrainConfig()


@dataclass(slots=True)
class LaunchRequest:
    name: str = _DEFAULT.name
    model: str = _DEFAULT.model
    cep: str = _DEFAULT.data.cep
    dataset: str = SOURCE_SEPARATOR.join(_DEFAULT.data.sources)  # comma-separated sources
    lora_r: str = str(_DEFAULT.lora.r)
    lora_alpha: str = str(_DEFAULT.lora.alpha)
    lora_dropout: str = str(_DEFAULT.lora.dropout)
    max_steps: str = str(_DEFAULT.train.max_steps)  # 0: train.epochs decides the length
    learning_rate: str = str(_DEFAULT.train.learning_rate)
    batch_size: str = str(_DEFAULT.train.batch_size)
    max_seq_length: str = str(_DEFAULT.train.max_seq_length)
    backend: str = "local"
    gpus: str = "0"
    base: dict[str, Any] = field(default_factory=dict)  # the config the form started from (kept settings)

    @classmethod
    def from_config(cls, path: Path) -> LaunchRequest:
        """The form filled from a config file; what the file leaves out is the engine's default."""
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        data, lora, train = raw.get("data", {}), raw.get("lora", {}), raw.get("train", {})
        blank = cls()
        return cls(
            name=str(raw.get("name", path.stem)),
            model=str(raw.get("model", blank.model)),
            cep=str(data.get("cep", blank.cep)),
            dataset=SOURCE_SEPARATOR.join(data["sources"]) if "sources" in data else blank.dataset,
            lora_r=str(lora.get("r", blank.lora_r)),
            lora_alpha=str(lora.get("alpha", blank.lora_alpha)),
            lora_dropout=str(lora.get("dropout", blank.lora_dropout)),
            max_steps=str(train.get("max_steps", blank.max_steps)),
            learning_rate=str(train.get("learning_rate", blank.learning_rate)),
            batch_size=str(train.get("batch_size", blank.batch_size)),
            max_seq_length=str(train.get("max_seq_length", blank.max_seq_length)),
            base=raw,
        )

    def gpu_count(self) -> int:
        try:
            n = int(self.gpus)
        except ValueError:
            raise InputError(
                f"GPU count {self.gpus!r} is not a whole number", path=FORM, field="gpus"
            ) from None
        if n < 0:
            raise InputError("GPU count cannot be negative", path=FORM, field="gpus")
        return n

    def to_raw(self) -> dict[str, Any]:
        """The config as a TOML-shaped dict: the base config with the form's fields over it."""

        def number(text: str, kind: type, name: str) -> Any:
            try:
                return kind(text.strip())
            except ValueError:
                raise InputError(f"{text!r} is not a valid {kind.__name__}", path=FORM, field=name) from None

        if self.backend not in BACKENDS:
            raise InputError(f"backend {self.backend!r}: use local or slurm", path=FORM, field="backend")
        raw = json.loads(json.dumps(self.base))  # a deep copy
        raw["name"] = self.name.strip() or "run"
        raw["model"] = self.model.strip()
        data = raw.setdefault("data", {})
        data["cep"] = self.cep
        data["sources"] = split_sources(self.dataset)
        lora = raw.setdefault("lora", {})
        lora["r"] = number(self.lora_r, int, "lora.r")
        lora["alpha"] = number(self.lora_alpha, int, "lora.alpha")
        lora["dropout"] = number(self.lora_dropout, float, "lora.dropout")
        train = raw.setdefault("train", {})
        train["max_steps"] = number(self.max_steps, int, "train.max_steps")
        train["learning_rate"] = number(self.learning_rate, float, "train.learning_rate")
        train["batch_size"] = number(self.batch_size, int, "train.batch_size")
        train["max_seq_length"] = number(self.max_seq_length, int, "train.max_seq_length")
        gpus = self.gpu_count()
        if gpus:
            raw["gpus"] = list(range(gpus))
        else:
            raw.pop("gpus", None)
        return raw


def write_config(request: LaunchRequest, home: Path) -> Path:
    """Validate (InputError names the field) and write HOME/launch/NAME-STAMP.toml."""
    from cep_core.training.config import config_from_dict, to_toml

    config = config_from_dict(request.to_raw(), path=FORM)
    from cep_core.store.private import private_dir, write_private

    folder = private_dir(home / "launch")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", config.name).strip("-.") or "run"
    path = folder / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}.toml"
    return write_private(path, to_toml(config))


@dataclass(slots=True)
class CheckResult:
    name: str
    status: str  # ok | warn | fail
    detail: str


def run_checks(config: Path, home: Path, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> list[CheckResult]:
    """`cep train CONFIG --check --json` in a subprocess: the engine's own pre-flight, so the form and the command
    line cannot disagree, and nothing heavy (data loaders, the Hub client) enters the console's process. It runs
    under the home the job will run under: what it says (where builtin:smollm2 is converted, say) is what the job
    will do. Its exit status is ignored: failing checks are an answer, shown like any other."""
    cmd = [
        sys.executable,
        "-m",
        "cep_core.cli",
        "--home",
        str(home),
        "train",
        str(config),
        "--check",
        "--json",
    ]
    env = {**os.environ, "CEP_HOME": str(home)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired:
        return [CheckResult("preflight", "fail", f"the pre-flight took longer than {timeout_s:.0f} s")]
    try:
        checks = last_json_object(proc.stdout)["checks"]
        return [CheckResult(str(c["name"]), str(c["status"]), str(c.get("detail", ""))) for c in checks]
    except (ValueError, KeyError, TypeError):
        err = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [CheckResult("preflight", "fail", "the pre-flight did not answer: " + " | ".join(err))]


def last_json_object(text: str) -> Any:
    """The last indented JSON object of a command's stdout (`cep … --json` starts it with a line `{`): whatever a
    library printed before it is skipped. ValueError when there is none."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "{"]
    if not starts:
        raise ValueError("no JSON object on stdout")
    return json.loads("\n".join(lines[starts[-1] :]))


def can_launch(checks: list[CheckResult], override_warnings: bool) -> tuple[bool, str]:
    """A launch needs checks, none failing; warnings need the user's explicit override."""
    if not checks:
        return False, "run the pre-flight checks first (ctrl+k)"
    failing = [c for c in checks if c.status == "fail"]
    if failing:
        return (
            False,
            f"{len(failing)} check(s) fail: fix them first ({failing[0].name}: {failing[0].detail[:120]})",
        )
    warnings = [c for c in checks if c.status == "warn"]
    if warnings and not override_warnings:
        return False, f"{len(warnings)} warning(s): tick 'launch despite warnings' to go on"
    return True, "ready to launch"
