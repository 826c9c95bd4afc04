"""Mixed image / text-only SFT data under DeepSpeed ZeRO-2 (R1V3-8B's launch): the connector trains, so a
process whose micro-batch is text-only would reduce fewer gradients than the other (found by the 8B
rehearsal: "Received data size doesn't match expected size", then SIGABRT)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from skywork_rl.trainers.vision_batches import bucketed_gradient_reduce

REPO = Path(__file__).resolve().parents[2]


def test_bucketed_reduce_is_deepspeed_zero1_or_2_only(monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert bucketed_gradient_reduce(None) is None  # DDP / one process
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert bucketed_gradient_reduce(None) == "DeepSpeed ZeRO-2"
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert bucketed_gradient_reduce(None) is None  # sharded parameters: `sharded_parameters` says so


def _mixed_rows(source: Path, out: Path) -> Path:
    """Blocks of two image rows then two text-only rows: read in order with 2 rows per process,
    process 0 only ever gets image rows, process 1 only text-only ones."""

    def strip(row: dict, index: int) -> dict:
        if index % 4 < 2:
            return row
        prompt = [
            {**m, "content": [c for c in m["content"] if c["type"] != "image"]}
            if isinstance(m["content"], list)
            else m
            for m in row["prompt"]
        ]
        return {**row, "prompt": prompt, "images": []}

    datasets.load_from_disk(str(source)).map(strip, with_indices=True).save_to_disk(str(out))
    return out


@pytest.mark.slow
def test_zero2_sft_trains_when_one_process_gets_text_only_batches_and_the_other_images(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")
    out, steps = tmp_path / "sft", 3
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    command += [str(REPO / "recipes" / "accelerate" / "zero2.yaml"), "--num_processes", "2"]
    command += ["--mixed_precision", "no", "-m", "skywork_rl.cli", "stage", "sft"]
    command += ["--config", str(REPO / "recipes" / "tiny" / "sft.yaml"), "--training.report_to=[]"]
    command += [
        f"--model.name_or_path={tiny_internvl}",
        "--model.trainable=[llm, connector]",  # the 8B recipe's: the connector gets no gradient on text-only rows
        f"--data.train={_mixed_rows(synthetic_dataset_dir, tmp_path / 'mixed')}",
        f"--training.output_dir={out}",
        f"--training.max_steps={steps}",
        f"--training.save_steps={steps}",
        "--training.per_device_train_batch_size=2",
        "--training.train_sampling_strategy=sequential",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert json.loads((out / "stage.json").read_text())["status"] == "complete"
    state = json.loads((out / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    assert state["global_step"] == steps
