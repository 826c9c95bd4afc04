"""A stage killed after a checkpoint and run again ends with the weights of the run that was never stopped.

HF Trainer's own standard for resume (CPU, constant learning rate): N steps straight vs the same
recipe killed right after `checkpoint-K` (a complete checkpoint) and re-run with the default
`resume_from_checkpoint: auto`. Every parameter of the two final models must agree. The runs cross an
epoch boundary after the resume, so data order is part of what is compared; the GRPO run has the
Selective Sample Buffer holding samples at the checkpoint and replaying them after it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import skywork_rl.callbacks.config as monitor_config
from skywork_rl.stages.base import STAGE_JSON, parse_stage_config, run_stage
from skywork_rl.stages.grpo import GRPOStage
from skywork_rl.stages.sft import SFTStage

# Measured on the tiny models (2 shared CPU cores): the resumed weights equal the straight ones bitwise.
TOLERANCE = 0.0


class Killed(Exception):
    """Stands for the process being killed."""


class KillAfterCheckpoint(TrainerCallback):
    """Raises right after `checkpoint-<step>` is complete on disk, as a kill at that moment would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Killed(f"killed after checkpoint-{self.step}")


def killed_after(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Make the next stage run die right after its checkpoint at `step`."""
    attach = monitor_config.attach_monitors

    def attach_and_kill(trainer, args, train_dataset):
        trainer.add_callback(KillAfterCheckpoint(step))
        return attach(trainer, args, train_dataset)

    monkeypatch.setattr(monitor_config, "attach_monitors", attach_and_kill)


def max_weight_difference(a: Path, b: Path) -> float:
    left, right = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert left.keys() == right.keys()
    return max((left[k].double() - right[k].double()).abs().max().item() for k in left)


def straight_and_resumed(stage_class, argv, tmp_path: Path, monkeypatch, kill_at: int) -> tuple[Path, Path]:
    """Run the recipe once straight and once killed after `checkpoint-<kill_at>` then re-run; return both outputs."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_stage(stage_class(parse_stage_config(stage_class, [*argv, f"--training.output_dir={straight}"])))
    config = [*argv, f"--training.output_dir={resumed}"]
    with monkeypatch.context() as patch:
        killed_after(patch, kill_at)
        with pytest.raises(Killed):
            run_stage(stage_class(parse_stage_config(stage_class, config)))
    assert json.loads((resumed / STAGE_JSON).read_text())["status"] == "failed"
    assert not (resumed / "model.safetensors").exists()
    run_stage(stage_class(parse_stage_config(stage_class, config)))  # resume_from_checkpoint: auto
    return straight, resumed


def _common(model: Path, data: Path, steps: int) -> list[str]:
    return [
        f"--model.name_or_path={model}",
        f"--data.train={data}",
        f"--training.max_steps={steps}",
        "--training.lr_scheduler_type=constant",
        "--training.logging_steps=1",
        "--training.save_strategy=steps",
        "--training.bf16=false",
        "--training.use_cpu=true",
        "--training.report_to=[]",
        "--training.seed=0",
        "--training.dataloader_num_workers=0",
    ]


@pytest.mark.slow
def test_resumed_sft_run_ends_with_the_uninterrupted_weights(
    tiny_internvl, synthetic_dataset_dir, tmp_path, monkeypatch
):
    # 8 rows, 4 per step: 2 steps per epoch, so the resumed run crosses two epoch boundaries.
    argv = _common(tiny_internvl, synthetic_dataset_dir, steps=6) + [
        "--data.max_train_samples=8",
        "--training.per_device_train_batch_size=4",
        "--training.learning_rate=1e-3",
        "--training.save_steps=3",
        "--training.max_length=512",
    ]
    straight, resumed = straight_and_resumed(SFTStage, argv, tmp_path, monkeypatch, kill_at=3)

    assert max_weight_difference(tiny_internvl, straight) > 1e-3  # training moved the weights
    difference = max_weight_difference(straight, resumed)
    print(f"sft straight vs resumed: max |dweight| = {difference:.3g}")
    assert difference <= TOLERANCE
    state = json.loads((resumed / "checkpoint-6" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    straight_losses = [
        h["loss"]
        for h in json.loads((straight / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
        if "loss" in h
    ]
    assert losses == straight_losses

    # stage.json: the resume is recorded (from which checkpoint, when) and totals cover both parts.
    record, straight_record = (json.loads((p / STAGE_JSON).read_text()) for p in (resumed, straight))
    first, second = record["parts"]
    assert (first["status"], first["resumed_from"], first["from_step"], first["to_step"]) == (
        "failed",
        None,
        0,
        3,
    )
    assert second["status"] == "complete" and second["resumed_from"] == str(resumed / "checkpoint-3")
    assert (second["from_step"], second["to_step"], second["started_at"]) == (3, 6, record["started_at"])
    totals = record["totals"]
    assert (totals["parts"], totals["resumes"]) == (2, 1)
    assert totals["duration_s"] == pytest.approx(first["duration_s"] + second["duration_s"], abs=0.01)
    assert totals["num_tokens"] == first["num_tokens"] + second["num_tokens"] > second["num_tokens"] > 0
    assert totals["num_tokens"] == straight_record["totals"]["num_tokens"]  # same tokens as the straight run
    assert straight_record["totals"]["resumes"] == 0


def half_informative(prompts: list, completions: list, solution: list, **kwargs) -> list[float]:
    """Deterministic reward: constant for some prompts (zero-std groups), the parity of the completion's
    characters for the others (groups that vary, mostly). Both kinds meet in most batches, so the buffer
    fills from the one kind and replays into the other."""
    rewards = []
    for completion, answer in zip(completions, solution, strict=True):
        text = completion[0]["content"] if isinstance(completion, list) else completion
        text = text if isinstance(text, str) else json.dumps(text)
        rewards.append(1.0 if sum(map(ord, answer)) % 2 == 0 else float(sum(map(ord, text)) % 2))
    return rewards


def _grpo_argv(model: Path, data: Path, steps: int, *extra: str) -> list[str]:
    return _common(model, data, steps) + [
        f"--rewards.reward_funcs=[{sys.modules[__name__].__name__}:half_informative]",
        "--data.max_train_samples=6",
        "--training.per_device_train_batch_size=6",
        "--training.num_generations=3",
        "--training.max_completion_length=8",
        "--training.learning_rate=1e-3",
        "--training.beta=0.0",
        "--training.loss_type=dapo",
        "--training.ssb_enabled=true",
        "--training.ssb_max_fill_ratio=1.0",
        "--training.ssb_max_age=null",
        "--training.save_steps=1",
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "kill_at"),
    [
        pytest.param((), 4, id="aligned"),
        # One generation feeds two optimizer steps; the kill falls between them, so the resumed run
        # must train on the stored second half instead of generating anew.
        pytest.param(("--training.steps_per_generation=2",), 3, id="inside-generation-cycle"),
    ],
)
def test_resumed_grpo_run_ends_with_the_uninterrupted_weights(
    tiny_internvl, synthetic_dataset_dir, tmp_path, monkeypatch, extra, kill_at
):
    argv = _grpo_argv(tiny_internvl, synthetic_dataset_dir, 6, *extra)
    straight, resumed = straight_and_resumed(GRPOStage, argv, tmp_path, monkeypatch, kill_at=kill_at)

    # The buffer held samples at the checkpoint and replayed them after the resume, in both runs alike.
    buffer = torch.load(resumed / f"checkpoint-{kill_at}" / "ssb_buffer_rank0.pt", weights_only=True)
    assert len(buffer["samples"]) > 0
    logs = {}
    for name, out in (("straight", straight), ("resumed", resumed)):
        history = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
        logs[name] = [h for h in history if "loss" in h]
    after = [h for h in logs["resumed"] if h["step"] > kill_at]
    assert sum(h.get("ssb/injected", 0) for h in after) > 0  # logged at the steps that generate
    for key in ("loss", "reward", "ssb/injected", "ssb/buffer_size", "frac_reward_zero_std"):
        assert [h.get(key) for h in logs["straight"]] == [h.get(key) for h in logs["resumed"]], key

    assert max_weight_difference(tiny_internvl, straight) > 1e-4
    difference = max_weight_difference(straight, resumed)
    print(f"grpo {extra} straight vs resumed: max |dweight| = {difference:.3g}")
    assert difference <= TOLERANCE
