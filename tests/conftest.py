"""Shared fixtures: tiny real checkpoints and synthetic data, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny checkpoints by arch (any of `skywork_rl.tiny.TINY_ARCHS`), written on first use and shared."""
    from skywork_rl.tiny import TINY_ARCHS, make_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")

    class _Lazy(dict):
        def __missing__(self, arch: str) -> Path:
            if arch not in TINY_ARCHS:
                raise KeyError(arch)
            path = make_tiny_model(arch, root / arch)
            self[arch] = path
            return path

    return _Lazy()


@pytest.fixture(scope="session")
def tiny_internvl(tiny_model_dir: dict[str, Path]) -> Path:
    """Path of the tiny InternVL checkpoint (the papers' architecture)."""
    return tiny_model_dir["internvl"]


@pytest.fixture(scope="session")
def synthetic_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 synthetic canonical rows (with SFT traces) saved with `save_to_disk`."""
    from skywork_rl.synthetic import build_dataset

    path = tmp_path_factory.mktemp("synthetic") / "data"
    build_dataset(48, seed=0).save_to_disk(str(path))
    return path


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the repo; tests that need it skip when it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA
