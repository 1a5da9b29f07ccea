"""Shared fixtures. Tests never reach the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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
