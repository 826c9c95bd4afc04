"""SSBGRPOTrainer on the tiny InternVL: replay gives zero-std batches a loss, all loss types, resume, 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import tiny_grpo_trainer

from skywork_rl.trainers.grpo_rows import collate_rows, informative_samples, split_rows
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig
from skywork_rl.trainers.ssb_storage import stored_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]


class FirstBatchInformative:
    """Reward that varies inside every group on the first generation, then is constant (all std zero).

    With `only_rank` set, only that process's first groups vary: processes then hold different buffers.
    """

    __name__ = "first_batch_informative"

    def __init__(self, only_rank: int | None = None) -> None:
        self.calls = 0
        self.only_rank = only_rank

    def __call__(self, completions: list, **kwargs) -> list[float]:
        self.calls += 1
        rank = int(os.environ.get("RANK", "0"))
        if self.calls == 1 and self.only_rank in (None, rank):
            return [float(i % 2) for i in range(len(completions))]
        return [1.0] * len(completions)


def _trainer(
    model_dir: Path,
    out: Path,
    *,
    max_steps: int = 2,
    only_rank: int | None = None,
    trainer_class: type | None = None,
    **overrides,
):
    return tiny_grpo_trainer(
        model_dir,
        out,
        FirstBatchInformative(only_rank),
        rows=16,
        trainer_class=trainer_class,
        **{"max_steps": max_steps, "max_completion_length": 8, "learning_rate": 1e-3, **overrides},
    )


def _last_step_logs(trainer) -> dict:
    return [h for h in trainer.state.log_history if "loss" in h][-1]


# grpo in the fast lane; the other two loss types under `slow`
@pytest.mark.parametrize(
    "loss_type",
    ["grpo", pytest.param("dapo", marks=pytest.mark.slow), pytest.param("dr_grpo", marks=pytest.mark.slow)],
)
def test_zero_std_batch_gets_nonzero_loss_from_buffered_samples(tiny_internvl, tmp_path, loss_type):
    trainer = _trainer(tiny_internvl, tmp_path, loss_type=loss_type)
    trainer.train()
    logs = _last_step_logs(trainer)
    assert logs["frac_reward_zero_std"] == 1.0  # every fresh group of step 2 is uninformative
    assert logs["ssb/injected"] == 2  # ssb_max_fill_ratio 0.5 of the 4 samples
    assert logs["ssb/effective_ratio"] == 0.5
    assert logs["loss"] != 0.0

    # The update holds the buffered samples as stored: their advantage and behaviour log-probs.
    update = trainer._buffered_inputs[0]
    replayed = (update["advantages"].abs() > 1e-3).nonzero().flatten().tolist()
    assert len(replayed) == 2
    stored = {tuple(s.payload["completion_ids"].tolist()): s.payload for s in trainer.ssb.samples}
    for i in replayed:
        length = int(update["completion_mask"][i].sum())
        payload = stored[tuple(update["completion_ids"][i, :length].tolist())]
        assert update["advantages"][i].item() == payload["advantages"].item()
        torch.testing.assert_close(update["old_per_token_logps"][i, :length], payload["old_per_token_logps"])
        assert payload["num_images"] == 1 and payload["pixel_values"].ndim == 4  # the image travels along
    # The buffer holds one group (4 rollouts of one prompt): its image is stored once, and the logged
    # bytes are the distinct storages the buffer holds.
    payloads = [s.payload for s in trainer.ssb.samples]
    assert len({p["pixel_values"].untyped_storage().data_ptr() for p in payloads}) == 1
    assert logs["ssb/buffer_bytes"] == stored_bytes(payloads) < 2 * payloads[0]["pixel_values"].nbytes


@pytest.mark.slow
def test_plain_grpo_has_zero_loss_on_the_same_zero_std_batch(tiny_internvl, tmp_path):
    trainer = _trainer(tiny_internvl, tmp_path, ssb_enabled=False)
    trainer.train()
    logs = _last_step_logs(trainer)
    assert logs["frac_reward_zero_std"] == 1.0
    assert logs["loss"] == 0.0
    assert "ssb/injected" not in logs


def completion_parity(completions: list, **kwargs) -> list[float]:
    """A reward of the completion's text alone, so every step's loss depends on what was generated."""
    return [float(sum(map(ord, str(c))) % 2) for c in completions]


def test_ssb_off_trains_exactly_like_trl_grpo(tiny_internvl, tmp_path):
    """Our trainer with the buffer off is TRL's GRPO: same weights after steps that cross an epoch."""
    from trl import GRPOConfig, GRPOTrainer

    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.miniature.synthetic import build_dataset
    from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer

    dataset = build_dataset(2, seed=0).select_columns(["prompt", "images", "solution"])  # 2 steps per epoch
    options = dict(
        max_steps=3,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        bf16=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    weights = []
    for trainer_class, config in ((GRPOTrainer, GRPOConfig), (SSBGRPOTrainer, SkyworkGRPOConfig)):
        extra = {"ssb_enabled": False} if config is SkyworkGRPOConfig else {}
        model, processor = load_model_and_processor(str(tiny_internvl))
        trainer = trainer_class(
            model=model,
            reward_funcs=completion_parity,
            args=config(output_dir=str(tmp_path / trainer_class.__name__), **options, **extra),
            train_dataset=dataset,
            processing_class=processor,
        )
        trainer.train()
        assert any(h.get("grad_norm") for h in trainer.state.log_history)  # the steps had signal
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    trl_weights, ours = weights
    assert all(torch.equal(trl_weights[k], ours[k]) for k in trl_weights)


@pytest.mark.slow
def test_replay_with_gradient_accumulation_and_steps_per_generation(tiny_internvl, tmp_path):
    # One generation of 8 samples per process feeds 2 micro-batches; generations at steps 0 and 1.
    trainer = _trainer(
        tiny_internvl, tmp_path, gradient_accumulation_steps=2, steps_per_generation=2, ssb_max_fill_ratio=1.0
    )
    trainer.train()
    logs = _last_step_logs(trainer)
    assert logs["frac_reward_zero_std"] == 1.0
    assert logs["ssb/injected"] == 8 and logs["ssb/effective_ratio"] == 1.0
    assert logs["loss"] != 0.0


@pytest.mark.slow
def test_resume_restores_the_buffer(tiny_internvl, tmp_path):
    from transformers import TrainerCallback

    first = _trainer(tiny_internvl, tmp_path, save_strategy="steps", save_steps=2)
    first.train()
    saved = first.ssb.state_dict()
    checkpoint = tmp_path / "checkpoint-2"
    assert (checkpoint / "ssb_buffer_rank0.pt").exists()
    del first  # the "killed" run

    resumed = _trainer(tiny_internvl, tmp_path, max_steps=3)
    assert len(resumed.ssb) == 0
    seen: dict = {}

    class AtTrainBegin(TrainerCallback):  # after the checkpoint is loaded, before any new step
        def on_train_begin(self, args, state, control, **kwargs):
            seen.update(resumed.ssb.state_dict())

    resumed.add_callback(AtTrainBegin())
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 3
    assert len(seen["samples"]) == len(saved["samples"]) > 0
    assert seen["next_uid"] == saved["next_uid"] and seen["rng_state"] == saved["rng_state"]
    for a, b in zip(seen["samples"], saved["samples"], strict=True):
        assert (a["uid"], a["advantage"], a["step"], a["kind"]) == (
            b["uid"],
            b["advantage"],
            b["step"],
            b["kind"],
        )
        for key, value in b["payload"].items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(a["payload"][key], value)
            else:
                assert a["payload"][key] == value


def test_samples_masked_by_trls_importance_sampling_are_not_informative():
    """TRL's vLLM importance-sampling correction (sequence_mask / token_mask) sets a sample's ratio to 0."""
    advantages = torch.tensor([1.0, -1.0, 1.0, 0.0])
    completion_mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1]])
    sequence_ratio = torch.tensor([[0.0], [1.3], [0.7], [1.0]])  # sequence_mask: sample 0 dropped
    batch = {"advantages": advantages, "completion_mask": completion_mask}
    assert informative_samples(batch, 1e-3).tolist() == [True, True, True, False]
    batch["importance_sampling_ratio"] = sequence_ratio
    assert informative_samples(batch, 1e-3).tolist() == [False, True, True, False]
    # token_mask: sample 0's loss tokens all dropped (its third token is padding); sample 1 keeps one.
    batch["importance_sampling_ratio"] = torch.tensor(
        [[0.0, 0.0, 1.0], [0.0, 1.1, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    )
    assert informative_samples(batch, 1e-3).tolist() == [False, True, True, False]


class ForcedImportanceSamplingMask:
    """Mixin: TRL's output gets a sequence_mask ratio of 0 for `masked` samples of the first generation."""

    masked = (0, 1)

    def _apply_selective_sample_buffer(self, output: dict) -> dict:
        if not getattr(self, "_masked_once", False):
            self._masked_once = True
            ratio = torch.ones(output["advantages"].numel(), 1)
            ratio[list(self.masked)] = 0.0
            output["importance_sampling_ratio"] = ratio.to(output["advantages"].device)
            self.masked_completions = {
                tuple(output["completion_ids"][i][output["completion_mask"][i].bool()].tolist())
                for i in self.masked
            }
        return super()._apply_selective_sample_buffer(output)


@pytest.mark.slow
def test_samples_trl_masked_out_are_neither_buffered_nor_counted(tiny_internvl, tmp_path):
    from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer

    class Masked(ForcedImportanceSamplingMask, SSBGRPOTrainer):
        pass

    # Step 1's group of 4 is all informative (rewards 0, 1, 0, 1); TRL's mask drops samples 0 and 1.
    trainer = _trainer(tiny_internvl, tmp_path, max_steps=1, trainer_class=Masked)
    trainer.train()
    logs = _last_step_logs(trainer)
    assert logs["ssb/effective_ratio"] == 0.5
    assert len(trainer.ssb) == logs["ssb/buffer_size"] == 2
    buffered = {tuple(s.payload["completion_ids"].tolist()) for s in trainer.ssb.samples}
    assert not buffered & trainer.masked_completions


def test_rows_round_trip_and_repad_rows_of_different_widths():
    batch = {
        "prompt_ids": torch.tensor([[0, 5, 6], [7, 8, 9]]),
        "prompt_mask": torch.tensor([[0, 1, 1], [1, 1, 1]]),
        "completion_ids": torch.tensor([[1, 2, 0, 0], [3, 4, 5, 0]]),
        "completion_mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]]),
        "old_per_token_logps": torch.tensor([[-1.0, -2.0, 0.0, 0.0], [-3.0, -4.0, -5.0, 0.0]]),
        "advantages": torch.tensor([0.5, -0.5]),
        "mm_token_type_ids": torch.tensor([[0, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]]),
        "pixel_values": torch.arange(3 * 2, dtype=torch.float).view(3, 2),
        "num_images": [1, 1],
        "num_tiles": [1, 2],
        "num_items_in_batch": torch.tensor(5),
    }
    split = split_rows(batch)
    assert split.rows[0]["prompt_ids"].tolist() == [5, 6]
    assert split.rows[1]["completion_ids"].tolist() == [3, 4, 5]
    assert split.rows[0]["mm_token_type_ids"].tolist() == [1, 0, 0, 0]
    assert split.rows[1]["pixel_values"].tolist() == [[2.0, 3.0], [4.0, 5.0]]

    again = collate_rows(split.rows, split, pad_token_id=0)
    assert again["completion_ids"].tolist() == [[1, 2, 0], [3, 4, 5]]  # trailing all-pad column dropped
    assert torch.equal(again["prompt_ids"], batch["prompt_ids"])
    assert torch.equal(again["pixel_values"], batch["pixel_values"])
    assert again["num_tiles"] == [1, 2] and again["num_items_in_batch"] == 5

    swapped = collate_rows([split.rows[1], split.rows[0]], split, pad_token_id=0)
    assert swapped["prompt_mask"].tolist() == [[1, 1, 1], [0, 1, 1]]
    assert swapped["mm_token_type_ids"].tolist() == [[1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]]
    assert swapped["old_per_token_logps"][1].tolist() == [-1.0, -2.0, 0.0]
    assert swapped["pixel_values"].tolist() == [[2.0, 3.0], [4.0, 5.0], [0.0, 1.0]]
    assert swapped["advantages"].tolist() == [-0.5, 0.5]


def test_collate_refuses_rows_with_different_fields():
    rows = split_rows(
        {"prompt_ids": torch.ones(1, 2), "prompt_mask": torch.ones(1, 2), "completion_mask": torch.ones(1, 1)}
    )
    other = dict(rows.rows[0], extra=torch.ones(1))
    with pytest.raises(ValueError, match="row 1 has fields"):
        collate_rows([rows.rows[0], other], rows, pad_token_id=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("ssb_capacity", 0), ("ssb_max_fill_ratio", 1.5), ("ssb_max_age", -1), ("ssb_priority_exponent", -0.5)],
)
def test_config_rejects_bad_ssb_options(field, value, tmp_path):
    with pytest.raises(ValueError, match=f"training.{field}"):
        SkyworkGRPOConfig(output_dir=str(tmp_path), bf16=False, use_cpu=True, **{field: value})


TWO_PROCESS_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from skywork_rl.runner.process_group import close_process_group
from trainers.test_ssb_grpo import _trainer
trainer = _trainer(Path({model!r}), Path({out!r}), max_steps=3, only_rank=0, save_strategy="steps", save_steps=3)
trainer.train()
rank = trainer.accelerator.process_index
logs = [h for h in trainer.state.log_history if "loss" in h]
summary = {{"logs": logs, "buffer": len(trainer.ssb), "world_size": trainer.accelerator.num_processes}}
del trainer  # the DDP model holds the process group: gone first, so closing the group joins its threads
summary["threads_after_close"] = close_process_group()
Path({out!r}, f"rank{{rank}}.json").write_text(json.dumps(summary))
"""


@pytest.mark.slow
def test_two_process_run_completes(tiny_internvl, tmp_path):
    script = tmp_path / "two_process.py"
    script.write_text(
        textwrap.dedent(
            TWO_PROCESS_SCRIPT.format(
                tests=str(REPO_ROOT / "tests"), model=str(tiny_internvl), out=str(tmp_path)
            )
        )
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    # `accelerate launch --cpu` alone starts one process; the torchrun-based launcher starts two, and
    # `use_cpu=True` in the training config makes them a gloo MULTI_CPU group.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Only process 0 ever buffered samples, so only it replays: the processes take different paths
    # through the hook yet make the same collective calls, and both log the same gathered metrics.
    assert all(r["world_size"] == 2 for r in ranks)
    # No gloo thread outlives the run: one still freeing tensors at interpreter shutdown aborts the
    # process after its work is saved ("terminate called without an active exception", issue #14.6).
    assert ranks[0]["threads_after_close"] == ranks[1]["threads_after_close"] == []
    assert ranks[0]["buffer"] == 4 and ranks[1]["buffer"] == 0
    assert ranks[0]["logs"][-1]["ssb/injected"] == ranks[1]["logs"][-1]["ssb/injected"] == 2
    assert ranks[0]["logs"][-1]["ssb/effective_ratio"] == 0.25
    assert all((tmp_path / "checkpoint-3" / f"ssb_buffer_rank{r}.pt").exists() for r in (0, 1))
