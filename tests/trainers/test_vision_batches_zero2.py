"""Mixed image / text-only SFT data under DeepSpeed ZeRO-2 (R1V3-8B's launch): the connector trains, so a
process whose micro-batch is text-only would reduce fewer gradients than the other (found by the 8B
rehearsal: "Received data size doesn't match expected size", then SIGABRT)."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import REPO, accelerate_command, cli_stage, launch_env, save_mixed_rows

from skywork_rl.trainers.vision_batches import bucketed_gradient_reduce


def test_bucketed_reduce_is_deepspeed_zero1_or_2_only(monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert bucketed_gradient_reduce(None) is None  # DDP / one process
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert bucketed_gradient_reduce(None) == "DeepSpeed ZeRO-2"
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert bucketed_gradient_reduce(None) is None  # sharded parameters: `sharded_parameters` says so


@pytest.mark.slow
def test_zero2_sft_trains_when_one_process_gets_text_only_batches_and_the_other_images(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")
    out, steps = tmp_path / "sft", 3
    # blocks of two image rows then two text-only rows: read in order with 2 rows per process,
    # process 0 only ever gets image rows, process 1 only text-only ones
    mixed = save_mixed_rows(synthetic_dataset_dir, tmp_path / "mixed", images=2, text_only=2)
    stage = cli_stage("sft", "sft.yaml", "--training.report_to=[]")
    command = accelerate_command("zero2.yaml", *stage)
    command += [
        f"--model.name_or_path={tiny_internvl}",
        "--model.trainable=[llm, connector]",  # the 8B recipe's: the connector gets no gradient on text-only rows
        f"--data.train={mixed}",
        f"--training.output_dir={out}",
        f"--training.max_steps={steps}",
        f"--training.save_steps={steps}",
        "--training.per_device_train_batch_size=2",
        "--training.train_sampling_strategy=sequential",
    ]
    ran = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=900, cwd=REPO)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert json.loads((out / "stage.json").read_text())["status"] == "complete"
    state = json.loads((out / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    assert state["global_step"] == steps
