"""`skywork-rl preflight` where users meet it: the paper pipelines on their documented hardware, the
refusals it must make (vLLM TP, memory, buffer, checkpoints) and what it says when it cannot check.

The paper models' config.json files sit in a fake Hugging Face cache built from
tests/fixtures/model_configs, laid out as `hf download` leaves them; nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import yaml

from skywork_rl.preflight.command import PreflightRefused, main, preflight_pipeline, preflight_recipe
from skywork_rl.preflight.layout import Hardware

REPO = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).parent / "fixtures" / "model_configs"
# The hardware the paper recipes document (recipes/README.md): 8 x 80 GB per node, 1 TB of RAM per
# node, 4 TB of shared storage for outputs.
NODE = ["--gpus", "8", "--gpu-memory", "80GB", "--host-memory", "1TB", "--disk", "4TB"]


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    for config in sorted(CONFIGS.glob("*/*/config.json")):
        org, name = config.parent.parent.name, config.parent.name
        repo = cache / f"models--{org}--{name}"
        snapshot = repo / "snapshots" / "5c2e0e4d"
        snapshot.mkdir(parents=True)
        for file in config.parent.glob("*.json"):
            shutil.copy(file, snapshot / file.name)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("5c2e0e4d")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


# recipes/README.md's tables: this command, from the repository root, for each paper pipeline
TABLE_ARGS = [*NODE, "--model-config-dir", "tests/fixtures/model_configs"]


def readme_table(pipeline: str) -> str | None:
    """The preflight table recipes/README.md shows for a paper pipeline (None: not there)."""
    text = (REPO / "recipes" / "README.md").read_text()
    found = re.search(rf"<!-- preflight: {re.escape(pipeline)} -->\n```text\n(.*?)\n```", text, re.S)
    return found.group(1) if found else None


@pytest.mark.parametrize(
    "pipeline",
    # slow lane for the two R1V3 pipelines: the fast lane keeps the arithmetic covered by skywork-r1v2's
    [
        pytest.param("skywork-r1v3", marks=pytest.mark.slow),
        pytest.param("skywork-r1v3-8b", marks=pytest.mark.slow),
        "skywork-r1v2",
    ],
)
def test_paper_pipelines_fit_their_documented_hardware(capsys, monkeypatch, pipeline):
    monkeypatch.chdir(REPO)
    code = main([f"recipes/{pipeline}/pipeline.yaml", *TABLE_ARGS])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "stage" in out and "needed" in out and "available" in out and "verdict" in out
    assert "REFUSED" not in out and "\nunchecked:" not in out
    assert re.search(r"preflight: \d+ checked, 0 unchecked; nothing refused", out)
    assert readme_table(pipeline) == out.rstrip("\n"), f"recipes/README.md's {pipeline} table is not current"


@pytest.mark.slow
def test_the_38b_pipeline_command_prints_a_table_from_the_hub_cache(hub_cache):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "skywork_rl.cli", "preflight", "recipes/skywork-r1v3/pipeline.yaml"]
    cmd += ["--gpus", "8", "--gpu-memory", "80GB", "--nodes", "1"]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 node(s) x 8 GPUs x 80.0 GB" in result.stdout
    assert re.search(r"grpo-8k +GPU: training step", result.stdout)
    assert "local Hugging Face cache" in result.stdout  # the configs came from the cache


def _pipeline_with_tp(tmp_path: Path, tp: int) -> Path:
    spec = {
        "name": "tp-check",
        "output_root": str(tmp_path / "out"),
        "stages": [
            {
                "id": "rl-data",
                "stage": "pass-rate-filter",
                "config": {
                    "input": {"path": str(tmp_path / "data")},
                    "model": {
                        "name_or_path": "OpenGVLab/InternVL3-8B-hf",
                        "backend": "vllm",
                        "backend_kwargs": {"tensor_parallel_size": tp, "max_model_len": 12288},
                    },
                    "filter": {"num_generations": 8, "max_new_tokens": 8192},
                },
            }
        ],
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_vllm_tp_that_does_not_divide_the_heads_is_refused_without_any_hardware(hub_cache, tmp_path):
    # As in `run --dry-run` on a machine without GPUs: only the model's config is needed.
    report = preflight_pipeline(_pipeline_with_tp(tmp_path, 8), hardware=Hardware(source="none"))
    with pytest.raises(PreflightRefused, match=r"stage rl-data.*tensor_parallel_size.*28 attention heads"):
        report.raise_if_refused()
    assert not preflight_pipeline(_pipeline_with_tp(tmp_path, 4), hardware=Hardware(source="none")).refused


def test_preflight_command_exits_nonzero_naming_the_stage_and_key(hub_cache, tmp_path, capsys):
    code = main([str(_pipeline_with_tp(tmp_path, 8)), *NODE])
    out = capsys.readouterr().out
    assert code == 1
    assert "stage rl-data: vLLM TP 8 vs OpenGVLab/InternVL3-8B-hf" in out
    assert "change model.backend_kwargs.tensor_parallel_size" in out and "valid sizes: [1, 2, 4]" in out


def _recipe(tmp_path: Path, source: str, **training: object) -> Path:
    config = yaml.safe_load((REPO / source).read_text())
    config["training"].update(training)
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _shape(name: str):
    from skywork_rl.preflight.shapes import load_shape

    return load_shape(name, CONFIGS)


def _refusals(report) -> dict[str, str]:
    return {r.key: r.item for r in report.refused}


def test_38b_grpo_with_eight_16k_sequences_per_gpu_is_refused_with_the_batch_that_fits(hub_cache, tmp_path):
    recipe = _recipe(
        tmp_path, "recipes/skywork-r1v3/grpo.yaml", per_device_train_batch_size=8, max_completion_length=16384
    )
    hw = Hardware(8, 80 * 10**9, 4, 10**12, 4 * 10**12)
    report = preflight_recipe(
        recipe,
        "grpo",
        accelerate_config=REPO / "recipes/accelerate/multi_node_zero3.yaml",
        model="OpenGVLab/InternVL3-38B-hf",
        hardware=hw,
    )
    step = next(r for r in report.refused if r.key == "training.per_device_train_batch_size")
    assert step.needed > 150 * 10**9  # 154 GB of activations alone
    # 2 would fit the LLM's activations alone; the verifier (15 GB) and the vision tower's leave 1
    assert step.hint.startswith("1 fits")


def test_r1v2_one_gpu_per_38b_engine_is_refused_by_the_vllm_budget(hub_cache, tmp_path):
    recipe = _recipe(
        tmp_path,
        "recipes/skywork-r1v2/grpo.yaml",
        vllm_tensor_parallel_size=1,
        vllm_gpu_memory_utilization=0.3,
    )
    report = preflight_recipe(
        recipe,
        "grpo",
        accelerate_config=REPO / "recipes/accelerate/zero3_offload.yaml",
        model="OpenGVLab/InternVL3-38B-hf",
        hardware=Hardware(8, 80 * 10**9, 1, 10**12, 4 * 10**12),
    )
    assert _refusals(report) == {"training.vllm_gpu_memory_utilization": "vLLM engine (0.3 x GPU)"}
    # the reward model (8.3B, a VLM) is a full bf16 copy on every GPU, as the code places it, not
    # sharded and offloaded with the policy
    rm = next(r for r in report.rows if r.item.startswith("reward model Skywork/Skywork-VL-Reward-7B"))
    assert (
        "full copy per GPU" in rm.item
        and rm.needed == 2 * _shape("Skywork/Skywork-VL-Reward-7B").total_params
    )
    assert "host: offloaded" not in report.render()


def test_buffer_and_checkpoints_that_outgrow_host_and_disk_are_refused(hub_cache, tmp_path):
    # R1V3 itself runs without the buffer: its named variant with R1V2's buffer
    recipe = _recipe(tmp_path, "recipes/skywork-r1v3/grpo_ssb.yaml", ssb_max_age=None, save_total_limit=None)
    report = preflight_recipe(
        recipe,
        "grpo",
        accelerate_config=REPO / "recipes/accelerate/multi_node_zero3.yaml",
        model="OpenGVLab/InternVL3-38B-hf",
        hardware=Hardware(8, 80 * 10**9, 4, 200 * 10**9, 4 * 10**12),
    )
    refused = _refusals(report)
    # 1024 samples x 31.8 MB x 8 processes = 261 GB of buffered samples per node > 200 GB
    assert refused["training.ssb_capacity"] == "host memory per node"
    assert "training.save_total_limit" in refused


def test_a_model_without_a_local_config_is_reported_unchecked_not_downloaded(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code = main([str(_pipeline_with_tp(tmp_path, 8)), *NODE, "--allow-unchecked"])
    out = capsys.readouterr().out
    assert code == 0
    assert "unchecked" in out and "no config.json found offline" in out and "hf download" in out


@pytest.mark.slow  # slow lane: the fast lane keeps this module covered by the other preflight command tests in this file
def test_hardware_it_could_not_judge_exits_nonzero_with_the_counts(tmp_path, monkeypatch, capsys):
    """Asked about 8 x 80 GB with no model config to size anything: not `nothing refused`, exit 0."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code = main([f"{REPO}/recipes/skywork-r1v3-8b/pipeline.yaml", "--gpus", "8", "--gpu-memory", "80GB"])
    captured = capsys.readouterr()
    assert code == 3, captured.out
    summary = captured.out.strip().splitlines()[-1]
    assert re.fullmatch(r"preflight: \d+ checked, \d+ unchecked; the hardware could not be judged.*", summary)
    assert "unchecked; nothing refused" not in captured.out
    assert "--model-config-dir" in captured.err and "--allow-unchecked" in captured.err
    # without hardware to judge (no --gpus, no GPU here) the same plan is not an error
    assert main([f"{REPO}/recipes/skywork-r1v3-8b/pipeline.yaml"]) == 0
    # with the configs it judges every row
    code = main([f"{REPO}/recipes/skywork-r1v3-8b/pipeline.yaml", *NODE, "--model-config-dir", str(CONFIGS)])
    assert code == 0 and re.search(
        r"preflight: \d+ checked, 0 unchecked; nothing refused", capsys.readouterr().out
    )


def test_cpu_stages_are_not_sized_against_gpus(capsys):
    code = main([f"{REPO}/recipes/tiny/pipeline.yaml", *NODE])
    out = capsys.readouterr().out
    assert code == 0, out
    for stage in ("sft", "mpo", "grpo", "connector"):
        assert f"{stage}: on CPU, nothing to check" in out


def test_pipeline_dry_run_refuses_a_vllm_tp_that_does_not_divide_the_heads(hub_cache, tmp_path):
    from skywork_rl.runner.pipeline import run_pipeline

    with pytest.raises(PreflightRefused, match=r"tensor_parallel_size"):
        run_pipeline(_pipeline_with_tp(tmp_path, 8), dry_run=True)
    assert run_pipeline(_pipeline_with_tp(tmp_path, 4), dry_run=True)["dry_run"]
