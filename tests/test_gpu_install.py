"""The GPU install resolves to one coherent stack: what `pip install .[vllm]` picks, checked as a pairing.

pip resolves the project's `vllm` extra from PyPI without installing anything (`--dry-run --report`)
and the tests read the report: vLLM within the range the resolved TRL supports, torch and torchvision
exactly what that vLLM pins (and what pyproject.toml says), transformers accepted by vLLM, TRL and
this project, every extra we ask for declared by its package, and the Dockerfile's CUDA image of the
same CUDA major.minor as the resolved torch wheel (DeepSpeed's op builder refuses anything else).

The resolution ignores this machine's pip configuration (constraint files, local wheel folders) so
it answers for a clean machine, as CI and the Dockerfile see it. It needs PyPI: without it the
tests skip, saying so. It downloads wheel metadata (on PyPI mirrors without PEP 658 metadata, whole
wheels) into pip's own cache, never into the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")

pytestmark = pytest.mark.slow


def _index_reachable() -> bool:
    try:
        with urllib.request.urlopen(INDEX.rstrip("/") + "/pip/", timeout=10):
            return True
    except OSError:
        return False


# Set by .ci/run: the folder where it resolves the GPU install in the background while the suite
# runs (`python tests/test_gpu_install.py DIR`); network-bound, minutes on a mirror without PEP 658
# metadata, so it overlaps the CPU-bound tests instead of adding to them.
REPORT_DIR_ENV = "SKYWORK_RL_GPU_INSTALL_REPORT_DIR"


def resolve_gpu_install(out_dir: Path) -> int:
    """`pip install --dry-run --report` of `.[vllm]` as a clean machine sees it; writes
    ``report.json``, ``log`` and, last, ``rc`` (pip's exit status) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in ("PIP_INDEX_URL", "PIP_CERT")
    }
    env["PIP_CONFIG_FILE"] = os.devnull  # no machine-wide constraints or local wheel folders
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    cmd += ["--report", str(out_dir / "report.json"), f"{REPO}[vllm]"]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
        code, log = result.returncode, result.stderr
    except subprocess.TimeoutExpired as exc:
        code, log = 124, f"timed out after {exc.timeout} s"
    (out_dir / "log").write_text(log)
    (out_dir / "rc").write_text(str(code))
    return code


def _wait_for(out_dir: Path, timeout_s: float = 1500.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not (out_dir / "rc").exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the background resolution in {out_dir} did not finish in {timeout_s:.0f} s")
        time.sleep(2)


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pip's report of `pip install .[vllm]` on a clean machine: name -> (metadata, report)."""
    background = os.environ.get(REPORT_DIR_ENV)
    if background:
        out_dir = Path(background)
        _wait_for(out_dir)
    else:
        if not _index_reachable():
            pytest.skip(
                f"the package index {INDEX} is unreachable: the GPU install cannot be resolved offline"
            )
        out_dir = tmp_path_factory.mktemp("gpu-install")
        resolve_gpu_install(out_dir)
    code = int((out_dir / "rc").read_text())
    if code != 0 and background and not _index_reachable():
        pytest.skip(f"the package index {INDEX} is unreachable: the GPU install cannot be resolved offline")
    assert code == 0, f"`pip install .[vllm]` does not resolve:\n{(out_dir / 'log').read_text()[-4000:]}"
    data = json.loads((out_dir / "report.json").read_text())
    return {
        "packages": {canonicalize_name(i["metadata"]["name"]): i["metadata"] for i in data["install"]},
        "environment": data["environment"],
    }


def _requirements(metadata: dict[str, Any], env: dict[str, str], extra: str = "") -> dict[str, Requirement]:
    """The requirements that apply in `env` (with `extra` active), by canonical name."""
    out = {}
    for line in metadata.get("requires_dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({**env, "extra": extra}):
            out[canonicalize_name(req.name)] = req
    return out


def _version(resolved: dict[str, Any], name: str) -> Version:
    return Version(resolved["packages"][name]["version"])


def _exact_pin(req: Requirement) -> str:
    pins = [s.version for s in req.specifier if s.operator == "=="]
    assert len(pins) == 1, f"{req} is not an exact pin"
    return pins[0]


def test_resolved_vllm_is_in_the_range_trl_supports(resolved):
    env = resolved["environment"]
    trl_vllm = _requirements(resolved["packages"]["trl"], env, extra="vllm")["vllm"]
    vllm = _version(resolved, "vllm")
    assert trl_vllm.specifier.contains(vllm), f"vllm {vllm} outside TRL's supported {trl_vllm.specifier}"


def test_resolved_torch_and_torchvision_are_what_vllm_pins(resolved):
    env = resolved["environment"]
    vllm_reqs = _requirements(resolved["packages"]["vllm"], env)
    ours = {
        canonicalize_name(Requirement(r).name): Requirement(r)
        for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"][
            "vllm"
        ]
    }
    for name in ("torch", "torchvision"):
        pinned = _exact_pin(vllm_reqs[name])
        assert str(_version(resolved, name)) == pinned, f"{name} resolved away from vllm's pin {pinned}"
        assert _exact_pin(ours[name]) == pinned, (
            f"pyproject's vllm extra pins {ours[name]}, vllm pins {pinned}"
        )
    assert _exact_pin(ours["vllm"]) == str(_version(resolved, "vllm"))


def test_resolved_transformers_satisfies_vllm_trl_and_the_project(resolved):
    env = resolved["environment"]
    transformers = _version(resolved, "transformers")
    ours = _requirements({"requires_dist": _project_dependencies()}, env)
    for who, reqs in (
        ("vllm", _requirements(resolved["packages"]["vllm"], env)),
        ("trl", _requirements(resolved["packages"]["trl"], env)),
        ("skywork-rl", ours),
    ):
        spec = reqs["transformers"].specifier
        assert spec.contains(transformers), f"transformers {transformers} outside {who}'s {spec}"


def test_every_extra_the_project_names_is_declared_by_its_package(resolved):
    """An extra must be spelled as the package declares it (older installers do not normalise names)."""
    for line in _project_dependencies():
        req = Requirement(line)
        for extra in req.extras:
            provided = resolved["packages"][canonicalize_name(req.name)].get("provides_extra") or []
            assert extra in provided, f"{req.name} declares extras {provided}, not {extra!r}"


def test_dockerfile_cuda_image_matches_the_resolved_torch_build(resolved):
    torch_cuda = _torch_cuda(resolved)
    image = re.search(
        r"^ARG CUDA_IMAGE=nvidia/cuda:(\d+)\.(\d+)\.\d+-", (REPO / "Dockerfile").read_text(), re.M
    )
    assert image, "Dockerfile: no `ARG CUDA_IMAGE=nvidia/cuda:X.Y.Z-...` line"
    assert (image.group(1), image.group(2)) == torch_cuda, (
        f"Dockerfile base image is CUDA {image.group(1)}.{image.group(2)}, torch "
        f"{_version(resolved, 'torch')} is built for CUDA {'.'.join(torch_cuda)}"
    )


def _torch_cuda(resolved: dict[str, Any]) -> tuple[str, str]:
    """CUDA major.minor of the resolved torch wheel, from the CUDA runtime it requires."""
    reqs = _requirements(resolved["packages"]["torch"], resolved["environment"])
    for name in (
        "cuda-toolkit",
        "nvidia-cuda-runtime",
        "nvidia-cuda-runtime-cu12",
        "nvidia-cuda-runtime-cu13",
    ):
        if name in reqs:
            major, minor = _exact_pin(reqs[name]).split(".")[:2]
            return major, minor
    raise AssertionError(
        f"torch {_version(resolved, 'torch')} requires no CUDA runtime: a CPU wheel resolved"
    )


def _project_dependencies() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["vllm"]]


if __name__ == "__main__":
    sys.exit(resolve_gpu_install(Path(sys.argv[1])))
