"""Merge a run's LoRA adapter into its base: one standalone Hugging Face folder.

The folder loads with plain `AutoModelForCausalLM.from_pretrained(folder)` (no peft), in vLLM, and in
`cep serve`. Beside the weights and tokenizer, `cep-export.json` records the run, the base, the adapter's sha256
and the CEP text the model was trained with, so whoever serves it can prefix the same rules. Before anything is
written the merge is checked: the merged model's logits on a probe prompt must equal the adapter's. The folder
appears whole or not at all (written beside the destination, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from cep_core.errors import InputError
from cep_core.export import EXPORT_META
from cep_core.prompts.prefix import NO_CEP, get_cep
from cep_core.store.private import private_dir, private_tree, write_json
from cep_core.training.trained import TrainedModel, load_trained

EXPORT_FORMAT = 1
PROBE = [
    {"role": "system", "content": "You call tools."},
    {"role": "user", "content": "What is the weather in Oslo?"},
]
MAX_LOGIT_DIFF = 1e-3  # fp32 merges differ from the adapter's two-branch sum by rounding only


@dataclass(slots=True)
class ExportResult:
    folder: Path
    meta: dict[str, Any]


def default_folder(trained: TrainedModel) -> Path:
    return trained.run.root / "merged"


def export_run(
    ref: str | Path,
    out: str | Path | None = None,
    *,
    home: str | Path | None = None,
    force: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> ExportResult:
    """Merge the adapter of run `ref` into its base and write the folder; returns where and what was written."""
    trained = load_trained(ref, home)
    adapter = trained.require_adapter()
    folder = Path(out).expanduser().resolve() if out else default_folder(trained)
    if folder.exists() and not force:
        raise InputError("already exists (use --force to replace it)", path=folder)
    base = trained.base_source()
    log(f"loading {trained.model} ({base}) and the adapter of {trained.run.root.name}")
    merged, tokenizer, max_diff = merge(base, adapter)
    log(f"merged; the merged model's logits match the adapter's (max difference {max_diff:.2e})")
    cep = None if trained.cep == NO_CEP else get_cep(trained.cep)
    meta = {
        "format": EXPORT_FORMAT,
        "run_id": trained.run.root.name,
        "model": trained.model,
        "base_model": base,
        "adapter_sha256": _sha256(adapter / "adapter_model.safetensors"),
        "cep": {"variant": cep.name, "sha256": cep.sha256, "text": cep.text} if cep else None,
        "max_logit_difference": max_diff,
        "versions": _versions(),
        "exported_at": time.time(),
    }
    private_dir(folder.parent)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / EXPORT_META, meta)
        private_tree(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {folder}")
    return ExportResult(folder, meta)


def merge(base: str, adapter: Path) -> tuple[Any, Any, float]:
    """(merged model, tokenizer, largest logit difference between the adapter and the merged model)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cep_core.training.model import quiet_peft_deprecations

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype="auto")
    except OSError as exc:
        raise InputError(f"cannot load the base model: {exc}", path=base) from exc
    with quiet_peft_deprecations():
        peft_model = PeftModel.from_pretrained(model, adapter)
    peft_model.eval()
    probe = tokenizer.apply_chat_template(
        PROBE, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        before = peft_model(**probe).logits.float()
        merged = peft_model.merge_and_unload()
        after = merged(**probe).logits.float()
    max_diff = float((before - after).abs().max())
    if not max_diff <= MAX_LOGIT_DIFF:
        raise InputError(
            f"the merged model does not reproduce the adapter (max logit difference {max_diff:.3g}); "
            "nothing was written",
            path=adapter,
        )
    return merged, tokenizer, max_diff


def read_export_meta(folder: str | Path) -> dict[str, Any] | None:
    """The export record of a folder `cep export` wrote, else None."""
    try:
        meta = json.loads((Path(folder) / EXPORT_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for name in ("cep-console", "torch", "transformers", "peft"):
        with suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out
