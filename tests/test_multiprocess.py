"""Multi-process runs on the CPU: the SFT stage under 2-process DDP (through the pipeline runner, so
the recipe's accelerate config reaches `accelerate launch`), and DeepSpeed ZeRO-2/3 from the very
config files the GPU recipes use (recipes/accelerate/zero2.yaml, zero3.yaml, zero3_offload.yaml;
2 processes, no bf16 on CPU)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import accelerate_command, cli_stage, launch_env

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "recipes" / "accelerate"
STEPS, BATCH, ROWS = 3, 4, 48  # synthetic_dataset_dir has 48 rows
# What each process logs when `skywork-rl stage` joined its process group's threads before exiting
# (skywork_rl/runner/process_group.py: a gloo thread left for interpreter shutdown can abort the process).
CLOSED = "process group closed: its communication threads are joined"


def _sft_overrides(model: Path, data: Path, out: Path) -> dict:
    return {
        "model": {"name_or_path": str(model)},
        "data": {"train": str(data)},
        "training": {
            "output_dir": str(out),
            "max_steps": STEPS,
            "save_steps": STEPS,
            "logging_steps": 1,
            "per_device_train_batch_size": BATCH,
            "report_to": [],
        },
    }


def _assert_two_ranks_trained(out: Path) -> dict:
    """Both processes took part (per-rank RNG state, epoch counts 2 x batch rows per step) and saved one model."""
    record = json.loads((out / "stage.json").read_text())
    assert record["status"] == "complete" and (out / ".stage_complete").exists()
    state = json.loads((out / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == STEPS
    assert state["epoch"] == pytest.approx(STEPS * BATCH * 2 / ROWS)  # one process would give half
    assert all((out / f"checkpoint-{STEPS}" / f"rng_state_{r}.pth").exists() for r in (0, 1))
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == STEPS and all(0 < loss < 20 for loss in losses)
    return {"losses": losses, "metrics": record["metrics"]}


def _assert_saved_model_is_complete(out: Path, reference: Path) -> None:
    """The saved folder loads with every parameter at full shape (ZeRO-3 gathered them) and training changed it.

    Compared through `from_pretrained`, not the raw files: DeepSpeed's save also writes the tied
    `lm_head.weight`, which loading ties back to the embeddings.
    """
    from transformers import AutoModelForImageTextToText

    saved = dict(AutoModelForImageTextToText.from_pretrained(out).named_parameters())
    initial = dict(AutoModelForImageTextToText.from_pretrained(reference).named_parameters())
    assert set(saved) == set(initial)
    assert all(saved[k].shape == initial[k].shape for k in initial)
    assert any(not saved[k].equal(initial[k]) for k in initial if "language_model" in k)


@pytest.mark.slow
def test_sft_stage_runs_on_two_cpu_processes_from_a_pipeline(
    tiny_internvl, synthetic_dataset_dir, tmp_path, monkeypatch
):
    from skywork_rl.runner.pipeline import plan_pipeline, run_pipeline

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = {
        "name": "ddp",
        "output_root": str(tmp_path / "out"),
        "accelerate_config": str(ACCELERATE / "cpu_ddp.yaml"),
        "stages": [
            {
                "id": "sft",
                "stage": "sft",
                "recipe": str(REPO / "recipes" / "tiny" / "sft.yaml"),
                "overrides": _sft_overrides(tiny_internvl, synthetic_dataset_dir, tmp_path / "out" / "sft"),
            }
        ],
    }
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(spec))
    _, (stage,) = plan_pipeline(pipeline)
    assert ["--config_file", str(ACCELERATE / "cpu_ddp.yaml")] == stage.command()[3:5]
    report = run_pipeline(pipeline, quiet=True)
    assert report["stages"][0]["status"] == "ran"
    assert (tmp_path / "out" / "sft" / "stage.log").read_text().count(CLOSED) == 2
    _assert_two_ranks_trained(tmp_path / "out" / "sft")
    _assert_saved_model_is_complete(tmp_path / "out" / "sft", tiny_internvl)


def _launch_deepspeed_sft(config: str, model: Path, data: Path, out: Path) -> None:
    overrides = _sft_overrides(model, data, out)
    args = [
        f"--{group}.{key}={v if isinstance(v, str) else json.dumps(v)}"
        for group, vals in overrides.items()
        for key, v in vals.items()
    ]
    # The GPU recipe unchanged except: 2 processes instead of 8, and fp32 (bf16 is a GPU setting).
    command = accelerate_command(config, *cli_stage("sft", "sft.yaml", *args))
    result = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
def test_deepspeed_zero2_zero3_and_offload_train_identically_on_two_cpu_processes(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")
    runs = {}
    for stage, config in ((2, "zero2.yaml"), (3, "zero3.yaml"), ("3_offload", "zero3_offload.yaml")):
        out = tmp_path / f"zero{stage}"
        _launch_deepspeed_sft(config, tiny_internvl, synthetic_dataset_dir, out)
        runs[stage] = _assert_two_ranks_trained(out)
        shards = sorted(p.name for p in (out / f"checkpoint-{STEPS}" / f"global_step{STEPS}").iterdir())
        # DeepSpeed's own checkpoint: optimizer state partitioned per rank; ZeRO-3 partitions the weights too
        assert {f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)} <= set(shards)
        if stage != 2:
            assert {f"zero_pp_rank_{r}_mp_rank_00_model_states.pt" for r in (0, 1)} <= set(shards)
        _assert_saved_model_is_complete(out, tiny_internvl)
    # Sharding and offload change where state lives, not the maths: same seed and data, same loss curve
    # (the offload run steps with DeepSpeed's CPU Adam, JIT-compiled on first use).
    assert runs[3]["losses"] == pytest.approx(runs[2]["losses"], rel=1e-4)
    assert runs["3_offload"]["losses"] == pytest.approx(runs[2]["losses"], rel=1e-4)
