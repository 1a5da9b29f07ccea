"""The launch form's logic, apart from its widgets: fields -> a validated config file -> pre-flight -> start.

`LaunchRequest` holds what the user typed; `write_config` validates it through cep_core's TrainConfig (errors
name the field) and writes the TOML the run starts from; `run_checks` runs the pre-flight in a subprocess.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cep_core.errors import InputError

CEP_VARIANTS = ("universal", "compact", "structured", "toolcall", "none")
BACKENDS = ("local", "slurm")
PREFLIGHT_TIMEOUT_S = 180
FORM = "launch form"  # what errors name as their "file"


SOURCE_SEPARATOR = ", "


def split_sources(text: str) -> list[str]:
    """The dataset field's sources: separated by a comma and a space (or a semicolon), so a comma without a
    space stays inside one source (`bfcl:simple_python,multiple` is one source of two BFCL categories)."""
    return [s.strip() for s in re.split(r",\s+|;", text) if s.strip()]


@dataclass(slots=True)
class LaunchRequest:
    name: str = "run"
    model: str = "builtin:tiny"
    cep: str = "universal"
    dataset: str = "builtin:sample"  # comma-separated sources
    lora_r: str = "16"
    lora_alpha: str = "32"
    lora_dropout: str = "0.05"
    max_steps: str = "100"
    learning_rate: str = "2e-4"
    batch_size: str = "4"
    max_seq_length: str = "1024"
    backend: str = "local"
    gpus: str = "0"
    base: dict[str, Any] = field(default_factory=dict)  # the config the form started from (kept settings)

    @classmethod
    def from_config(cls, path: Path) -> LaunchRequest:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        data, lora, train = raw.get("data", {}), raw.get("lora", {}), raw.get("train", {})
        return cls(
            name=str(raw.get("name", path.stem)),
            model=str(raw.get("model", "builtin:tiny")),
            cep=str(data.get("cep", "universal")),
            dataset=SOURCE_SEPARATOR.join(data.get("sources", ["builtin:sample"])),
            lora_r=str(lora.get("r", 16)),
            lora_alpha=str(lora.get("alpha", 32)),
            lora_dropout=str(lora.get("dropout", 0.05)),
            max_steps=str(train.get("max_steps", 100)),
            learning_rate=str(train.get("learning_rate", 2e-4)),
            batch_size=str(train.get("batch_size", 4)),
            max_seq_length=str(train.get("max_seq_length", 1024)),
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
    from cep_core.private import private_dir, write_private

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
    """The training pre-flight in a subprocess (nothing heavy enters the console's process)."""
    cmd = [sys.executable, "-m", "cep_console.preflight_check", str(config), str(home / "runs")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return [CheckResult("preflight", "fail", f"the pre-flight took longer than {timeout_s:.0f} s")]
    try:
        checks = json.loads(proc.stdout.strip().splitlines()[-1])["checks"]
        return [CheckResult(str(c["name"]), str(c["status"]), str(c.get("detail", ""))) for c in checks]
    except (IndexError, ValueError, KeyError, TypeError):
        err = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [CheckResult("preflight", "fail", "the pre-flight did not answer: " + " | ".join(err))]


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
