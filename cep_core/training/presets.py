"""The ready-made training runs the product ships (`cep_core/training/configs/`): what the console's launch form
offers under `d`, and what the docs walk through. One list, so the console holds no copy of it."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    file: str
    title: str
    description: str


PRESETS = (
    # Titles fit the launch form's narrowest column (80-column terminals); the help text says the rest.
    Preset(
        "demo",
        "demo.toml",
        "tiny demo",
        "the built-in random model, about a minute on a CPU (proves the plumbing)",
    ),
    Preset(
        "smollm2",
        "smollm2.toml",
        "SmolLM2 (real)",
        "SmolLM2-135M-Instruct learns the tool-call format in minutes on a CPU",
    ),
)


def preset(name: str) -> Preset:
    for item in PRESETS:
        if item.name == name:
            return item
    raise KeyError(f"no preset {name!r}: {', '.join(p.name for p in PRESETS)}")


def preset_text(name: str) -> str:
    """The shipped config of a preset, as TOML text."""
    return (
        resources.files("cep_core.training")
        .joinpath("configs", preset(name).file)
        .read_text(encoding="utf-8")
    )
