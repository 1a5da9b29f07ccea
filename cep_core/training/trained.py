"""What a training run produced, as evaluation, export and serving need it: the base model the adapter belongs
to (builtin:tiny's per-run folder, builtin:smollm2's converted folder, or the configured model), the adapter
folder, and the CEP the run was trained with. One place, so the three never disagree on a run's base."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cep_core.errors import InputError
from cep_core.runs import RunPaths, find_run, run_status
from cep_core.training.config import TrainConfig, load_config
from cep_core.training.tiny import BUILTIN_TINY


@dataclass(slots=True)
class TrainedModel:
    run: RunPaths
    config: TrainConfig
    model: str  # the configured model (builtin:…, a folder, a Hub id)
    tiny_base: Path | None  # builtin:tiny's base, built inside the run

    @property
    def cep(self) -> str:
        return self.config.data.cep

    @property
    def adapter(self) -> Path:
        return self.run.adapter

    @property
    def has_adapter(self) -> bool:
        return (self.run.adapter / "adapter_config.json").is_file()

    def require_adapter(self, hint: str = "use it when it has completed") -> Path:
        if not self.has_adapter:
            raise InputError(
                f"run {self.run.root.name} has no adapter yet (it is {run_status(self.run.root)}); {hint}",
                path=self.run.adapter,
                field="run",
            )
        return self.run.adapter

    def base_source(self) -> str:
        """A loadable base: a folder path, or a Hub id (builtin:smollm2 converted on first use)."""
        if self.model == BUILTIN_TINY:
            assert self.tiny_base is not None
            if not (self.tiny_base / "config.json").is_file():
                raise InputError(
                    f"run {self.run.root.name} has no tiny-base/ (it never started training)",
                    path=self.tiny_base,
                )
            return str(self.tiny_base)
        from cep_core.builtin_models import resolve_model

        return resolve_model(self.model)


def load_trained(ref: str | Path, home: str | Path | None = None) -> TrainedModel:
    """The training run `ref` (path, id or unique id prefix) and what it trained."""
    run = find_run(str(ref), home)
    config = load_config(run.run_toml)
    tiny = run.tiny_base if config.model == BUILTIN_TINY else None
    return TrainedModel(run, config, config.model, tiny)
