"""What `cep serve TARGET` serves, and with which CEP.

TARGET is a folder `cep export` wrote (merged weights; its CEP from cep-export.json), a training run (its base
plus its adapter; the CEP it was trained with), or any model (builtin:smollm2, a local folder, a Hub id; no CEP
unless --cep names one). The CEP matters: a model trained with the prefix must be served with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.prompts.prefix import NO_CEP, Cep, get_cep


@dataclass(slots=True)
class ServeTarget:
    name: str  # the model id clients see in /v1/models and responses
    model: str  # what the loader takes (a folder, builtin:…, a Hub id)
    adapter: str | None
    tiny_base: Path | None
    cep: Cep | None
    kind: str  # export | run | model

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "model": self.model,
            "adapter": self.adapter,
            "cep": self.cep.name if self.cep else None,
            "cep_sha256": self.cep.sha256 if self.cep else None,
        }


def resolve_target(ref: str, cep: str | None = None, home: str | Path | None = None) -> ServeTarget:
    """The model, adapter and CEP that `ref` stands for; `cep` (a variant, a file or "none") overrides."""
    from cep_core.export.merge import read_export_meta

    path = Path(ref).expanduser()
    meta = read_export_meta(path) if path.is_dir() else None
    if meta is not None:
        recorded = meta.get("cep") or None
        served = Cep(recorded["variant"], recorded["text"]) if isinstance(recorded, dict) else None
        return ServeTarget(
            name=f"{meta.get('run_id') or path.name}-merged",
            model=str(path.resolve()),
            adapter=None,
            tiny_base=None,
            cep=_override(served, cep),
            kind="export",
        )
    if _is_run(ref, home):
        from cep_core.training.trained import load_trained

        trained = load_trained(ref, home)
        adapter = trained.require_adapter("serve it when it has completed, or serve its base model")
        trained_cep = None if trained.cep == NO_CEP else get_cep(trained.cep)
        return ServeTarget(
            name=trained.run.root.name,
            model=trained.model,
            adapter=str(adapter),
            tiny_base=trained.tiny_base,
            cep=_override(trained_cep, cep),
            kind="run",
        )
    if ref.startswith("builtin:tiny"):
        raise InputError("builtin:tiny is built per training run: serve the run instead", field="TARGET")
    return ServeTarget(
        name=ref.rsplit("/", 1)[-1] if "/" in ref else ref,
        model=str(path.resolve()) if path.is_dir() else ref,
        adapter=None,
        tiny_base=None,
        cep=_override(None, cep),
        kind="model",
    )


def _is_run(ref: str, home: str | Path | None) -> bool:
    from cep_core.runs import find_run

    try:
        find_run(ref, home)
    except InputError:
        return False
    return True


def _override(default: Cep | None, choice: str | None) -> Cep | None:
    if choice is None or choice == "":
        return default
    return None if choice == NO_CEP else get_cep(choice)
