"""Pre-flight checks: missing local model, unreachable Hub, gated model, bad config, empty dataset, GPU path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cep_core.checks import Status
from cep_core.training.config import TrainConfig
from cep_core.training.preflight import check_gpu, check_model, failure_kind, run_preflight


def _config(tmp_path, **changes) -> TrainConfig:
    config = TrainConfig(device="cpu")
    config.data.sources = ["builtin:sample"]
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def _by_name(result, name):
    return next(c for c in result.checks if c.name == name)


def test_missing_local_model_fails_with_the_path(tmp_path):
    result = run_preflight(_config(tmp_path, model=str(tmp_path / "no-such-model")), tmp_path)
    check = _by_name(result, "model")
    assert check.status == Status.FAIL and "does not exist" in check.detail and str(tmp_path) in check.detail
    assert result.status == Status.FAIL and failure_kind(check) == "model_access"


def test_incomplete_local_model_lists_what_is_missing(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    check = check_model(str(folder))
    assert check.status == Status.FAIL
    assert "weights" in check.detail and "tokenizer" in check.detail and "config.json" not in check.detail
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    (folder / "tokenizer.json").write_text("{}")
    assert check_model(str(folder)).status == Status.OK


def test_offline_hub_without_cache_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    check = check_model("Qwen/Qwen2.5-7B-Instruct")
    assert check.status == Status.FAIL
    assert "HF_HUB_OFFLINE=1" in check.detail and "not in the local Hugging Face cache" in check.detail
    # The hint names the command the venv has: `hf` (huggingface-cli is gone from huggingface_hub 1.0 on).
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "hf").is_file() and not (venv_bin / "huggingface-cli").exists()
    assert "`hf download Qwen/Qwen2.5-7B-Instruct`" in check.detail and "huggingface-cli" not in check.detail


def test_gated_model_gives_the_fixes(monkeypatch):
    # The Hub cannot be reached here: its answer (a real GatedRepoError on a 403 response) is injected.
    import httpx2
    from huggingface_hub.errors import GatedRepoError

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def gated(model: str) -> None:
        request = httpx2.Request("GET", f"https://huggingface.co/api/models/{model}/auth-check")
        raise GatedRepoError(
            f"Access to model {model} is restricted.", response=httpx2.Response(403, request=request)
        )

    check = check_model("meta-llama/Llama-3.1-8B-Instruct", hub_check=gated)
    assert check.status == Status.FAIL
    for fix in (
        "`hf auth login`",  # the command this venv has (huggingface_hub 1.0 removed huggingface-cli)
        "HF_TOKEN",
        "request access",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "Qwen/Qwen2.5-7B-Instruct",
    ):
        assert fix in check.detail


def test_unreachable_hub_online_fails_without_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def unreachable(model: str) -> None:
        raise ConnectionError("[Errno -2] Name or service not known")

    check = check_model("Qwen/Qwen2.5-7B-Instruct", hub_check=unreachable)
    assert check.status == Status.FAIL and "did not answer" in check.detail and "not cached" in check.detail


def test_bad_config_fails_first_and_stops(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nlearning_rate = -1\n")
    result = run_preflight(path, tmp_path)
    assert [(c.name, c.status) for c in result.checks] == [("config", Status.FAIL)]
    assert "train.learning_rate" in result.checks[0].detail and str(path) in result.checks[0].detail


def test_empty_dataset_fails_with_the_skip_reasons(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"conversations": [{"from": "human", "value": "only a question"}]}) + "\n{oops\n"
    )
    config = _config(tmp_path)
    config.data.sources = [str(rows)]
    result = run_preflight(config, tmp_path)
    check = _by_name(result, "data")
    assert check.status == Status.FAIL
    assert "no usable training rows" in check.detail and "no_assistant_turn 1" in check.detail
    assert "malformed_json 1" in check.detail
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    config.data.sources = [str(empty)]
    assert _by_name(run_preflight(config, tmp_path), "data").status == Status.FAIL


def test_all_good_on_cpu(tmp_path):
    result = run_preflight(_config(tmp_path), tmp_path)
    assert result.status == Status.OK, result.checks
    assert [c.name for c in result.checks] == ["config", "model", "data", "lora", "gpu", "disk"]
    assert len(result.prepared.train) > 50


def test_gpu_check_uses_the_health_module_without_a_driver(tmp_path):
    # The real NVML path: without a driver, a CUDA run fails pre-flight; the tiny model on `auto` falls back.
    _no_driver()
    cuda = check_gpu(_config(tmp_path, device="cuda"), footprint=10 * 1024**3)
    assert any(c.status == Status.FAIL for c in cuda)
    assert failure_kind(next(c for c in cuda if c.status == Status.FAIL)) == "nvml"
    auto = check_gpu(_config(tmp_path, device="auto"), footprint=0)
    assert [c.status for c in auto] == [Status.OK] and "trains on the CPU" in auto[0].detail


def _no_driver() -> None:
    """Skip where an NVIDIA driver answers: these tests are about the real no-driver path."""
    import pytest

    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present")
    except Exception:
        pass


def _model_folder(path: Path, weight_bytes: int = 0, index_total: int = 0) -> Path:
    """A local model folder as the pre-flight sees it: config, weights (their size gives the parameter count)
    and a tokenizer."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (path / "tokenizer.json").write_text("{}")
    with (path / "model.safetensors").open("wb") as handle:
        handle.truncate(weight_bytes or 16)
    if index_total:
        (path / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": index_total}})
        )
    return path


def test_a_small_local_model_on_auto_trains_on_the_cpu_when_there_is_no_driver(tmp_path):
    """device = "auto" on this driverless host: a 135M-parameter folder passes (it trains on the CPU), saying why
    in whole sentences; an 8B folder still fails on NVML."""
    _no_driver()
    small = _model_folder(tmp_path / "smol", weight_bytes=270_000_000)  # 16-bit: 135M parameters
    (check,) = check_gpu(_config(tmp_path, device="auto", model=str(small)), footprint=0)
    assert check.status == Status.OK and "this 135M-parameter model trains on the CPU" in check.detail
    assert "NVML library not found" in check.detail and "loader path.)" in check.detail
    assert "Fix:" not in check.detail
    big = _model_folder(tmp_path / "big", index_total=16_000_000_000)
    checks = check_gpu(_config(tmp_path, device="auto", model=str(big)), footprint=0)
    assert Status.FAIL in [c.status for c in checks]
    assert failure_kind(next(c for c in checks if c.status == Status.FAIL)) == "nvml"


def test_the_whole_preflight_of_a_small_local_model_on_auto_passes_without_a_driver(tmp_path):
    _no_driver()
    small = _model_folder(tmp_path / "smol", weight_bytes=2_000_000)
    result = run_preflight(_config(tmp_path, device="auto", model=str(small)), tmp_path)
    assert result.status == Status.OK, result.checks


def test_an_absurd_lora_rank_fails_before_any_memory_is_spent(tmp_path):
    config = _config(tmp_path, model="builtin:tiny")
    config.lora.r = 1_000_000_000
    result = run_preflight(config, tmp_path)
    check = _by_name(result, "lora")
    assert check.status == Status.FAIL and failure_kind(check) == "config"
    assert "above the model's hidden size 64" in check.detail and "lora.r to at most 64" in check.detail


def test_the_adapter_estimate_counts_the_targeted_modules_and_is_held_against_memory(tmp_path):
    from cep_core.training.preflight import adapter_parameters, check_adapter, model_shape

    config = _config(tmp_path, model="builtin:tiny")
    config.lora.r = 8
    shape = model_shape(config, 0)
    # q, k, v, o, gate, up, down of the three-layer tiny Llama (hidden 64, kv 32, intermediate 176).
    per_layer = 8 * ((64 + 64) + (64 + 32) * 2 + (64 + 64) + (64 + 176) * 3)
    assert adapter_parameters(config, shape) == per_layer * 3
    config.lora.target_modules = ["q_proj", "v_proj"]
    assert adapter_parameters(config, shape) == 8 * ((64 + 64) + (64 + 32)) * 3
    config.lora.modules_to_save = ["lm_head"]
    assert adapter_parameters(config, shape) == 8 * ((64 + 64) + (64 + 32)) * 3 + 1024 * 64
    check, params = check_adapter(config, 0)
    assert check.status == Status.OK and f"{params:,} trainable parameters" in check.detail
    check, _ = check_adapter(config, 0, available_bytes=params * 8)  # half of what its training state needs
    assert check.status == Status.FAIL and "more than the" in check.detail


def test_a_local_models_shape_is_read_from_its_config(tmp_path):
    from cep_core.training.preflight import check_adapter, model_shape

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "vocab_size": 128256,
            }
        )
    )
    config = _config(tmp_path, model=str(folder), device="cuda")
    assert model_shape(config, 0)["intermediate_size"] == 14336
    config.lora.r = 16
    check, params = check_adapter(config, 0)
    assert check.status == Status.OK and params == 41_943_040  # Llama-3.1-8B, r 16, all linear layers
    config.lora.r = 8192
    assert check_adapter(config, 0)[0].status == Status.FAIL
