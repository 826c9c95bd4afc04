"""Every family trains through SFT, GRPO with the Selective Sample Buffer and connector-only tuning.

A few steps each, chained as the pipeline chains them (SFT from the tiny checkpoint, GRPO from the
SFT output, the connector stage from the GRPO output), in one process to keep CI short; the whole
pipeline per family, each stage under `accelerate launch`, is `benchmarks/families_pipeline.py`.
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForImageTextToText

from skywork_rl.families.parts import resolve_parts
from skywork_rl.miniature.tiny import TINY_ARCHS
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.connector import ConnectorStage
from skywork_rl.stages.grpo import GRPOStage
from skywork_rl.stages.sft import SFTStage

STEPS = 2
COMMON = (
    f"--training.max_steps={STEPS}",
    "--training.logging_steps=1",
    "--training.save_strategy=no",
    "--training.bf16=false",
    "--training.use_cpu=true",
    "--training.report_to=[]",
    "--training.seed=0",
    "--training.dataloader_num_workers=0",
)


def _run(stage_class, model, data, out, *extra):
    argv = [f"--model.name_or_path={model}", f"--data.train={data}", f"--training.output_dir={out}"]
    config = parse_stage_config(stage_class, [*argv, *COMMON, *extra], source="test")
    return run_stage(stage_class(config))


def _parameters(path):
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    return dict(model.named_parameters()), resolve_parts(model)


def _changed(before, after):
    assert set(before) == set(after)
    return {name for name in before if not torch.equal(before[name], after[name])}


@pytest.mark.slow
@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_family_trains_through_sft_grpo_and_connector_and_the_last_changes_only_its_connector(
    arch, tiny_model_dir, synthetic_dataset_dir, tmp_path
):
    data = synthetic_dataset_dir
    sft = _run(
        SFTStage,
        tiny_model_dir[arch],
        data,
        tmp_path / "sft",
        "--training.per_device_train_batch_size=2",
        "--training.learning_rate=1e-2",
        "--training.max_length=512",
    )
    assert sft["global_step"] == STEPS and math.isfinite(sft["final_loss"])
    before, parts = _parameters(tiny_model_dir[arch])
    after, _ = _parameters(tmp_path / "sft")
    changed = _changed(before, after)
    assert changed and not changed & set(parts["vision"]), f"{arch}: SFT must train llm + connector only"

    grpo = _run(
        GRPOStage,
        tmp_path / "sft",
        data,
        tmp_path / "grpo",
        "--rewards.reward_funcs=[accuracy, format]",
        "--rewards.reward_weights=[1.0, 0.5]",
        "--training.per_device_train_batch_size=4",
        "--training.num_generations=2",
        "--training.max_completion_length=8",
        "--training.loss_type=dapo",
        "--training.ssb_enabled=true",
    )
    assert grpo["global_step"] == STEPS
    assert math.isfinite(grpo["final_reward"]) and 0.0 <= grpo["final_ssb/effective_ratio"] <= 1.0

    connector = _run(
        ConnectorStage,
        tmp_path / "grpo",
        data,
        tmp_path / "connector",
        "--training.per_device_train_batch_size=2",
        "--training.learning_rate=1e-2",
        "--training.max_length=512",
        "--mix.caps={synthetic/count_shapes: 2, synthetic/digit_arithmetic: 2}",
    )
    before, parts = _parameters(tmp_path / "grpo")
    after, _ = _parameters(tmp_path / "connector")
    changed = _changed(before, after)
    assert changed and changed <= set(parts["connector"]), f"{arch}: changed outside the connector"
    assert connector["connector/trainable_params"] == sum(before[n].numel() for n in parts["connector"])
