"""SSB at no extra forward: buffered behaviour log-probs come from the loss forward, and equal the extra pass's."""

from __future__ import annotations

import pytest
import torch
from trainers.test_ssb_grpo import _trainer
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

from skywork_rl.trainers.grpo_rows import informative_samples, split_rows
from skywork_rl.trainers.ssb_grpo import OLD_FROM_LOSS_FIELD, SSBGRPOTrainer

# What the trainer passed to its own forward before (TRL's image kwargs of `_compute_loss`).
_FORWARD_FIELDS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


class CountingForwards(SSBGRPOTrainer):
    """Counts model forwards, and computes behaviour log-probs the way the removed extra pass did."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.forwards = 0
        self.extra_pass: dict[tuple[int, ...], torch.Tensor] = {}  # completion ids -> log-probs
        self.loss_batches: list[tuple[dict, torch.Tensor]] = []

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        self.forwards += 1
        result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        self.last_logps = result[0].detach().clone()
        return result

    def _apply_selective_sample_buffer(self, output):
        if self.args.ssb_enabled:
            with (
                torch.no_grad(),
                disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
            ):
                logps, _, _ = (
                    GRPOTrainer._get_per_token_logps_and_entropies(  # not counted: the old extra pass
                        self,
                        self.model,
                        torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1),
                        torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1),
                        output["completion_ids"].size(1),
                        batch_size=self.args.per_device_train_batch_size,
                        **{key: output.get(key) for key in _FORWARD_FIELDS},
                    )
                )
            rows = split_rows({**output, "old_per_token_logps": logps}).rows
            for i in (
                informative_samples(output, self.args.ssb_advantage_threshold).nonzero().flatten().tolist()
            ):
                self.extra_pass[tuple(rows[i]["completion_ids"].tolist())] = rows[i]["old_per_token_logps"]
        return super()._apply_selective_sample_buffer(output)

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        self.loss_batches.append(
            ({k: v.clone() for k, v in inputs.items() if torch.is_tensor(v)}, self.last_logps)
        )
        return loss


@pytest.mark.slow
def test_buffered_log_probs_equal_the_extra_forward_and_cost_no_forward(tiny_internvl, tmp_path):
    # Aligned steps (TRL computes no old log-probs): one generation of 8 per process, 2 micro-batches.
    options = dict(gradient_accumulation_steps=2, steps_per_generation=2, learning_rate=1e-2, max_steps=2)
    trainer = _trainer(tiny_internvl, tmp_path / "ssb", trainer_class=CountingForwards, **options)
    trainer.train()
    plain = _trainer(
        tiny_internvl, tmp_path / "plain", trainer_class=CountingForwards, ssb_enabled=False, **options
    )
    plain.train()

    # The buffer's behaviour log-probs are what the extra pass computed before any update, to float precision.
    assert len(trainer.ssb) == 8 and len(trainer.extra_pass) == 8
    for sample in trainer.ssb.samples:
        expected = trainer.extra_pass[tuple(sample.payload["completion_ids"].tolist())]
        torch.testing.assert_close(sample.payload["old_per_token_logps"], expected, rtol=1e-5, atol=1e-6)
    # ... and cost no forward: SSB runs exactly the loss forwards plain GRPO runs (4 micro-batches).
    assert trainer.forwards == plain.forwards == 4
    # Step 2 replays into zero-advantage slots; its fresh rows take their old log-probs from the same
    # forward (ratio exactly 1, as TRL's own substitution), the replayed rows keep their stored ones.
    replay_batches = [
        (inputs, logps) for inputs, logps in trainer.loss_batches if OLD_FROM_LOSS_FIELD in inputs
    ]
    assert len(replay_batches) == 2
    for inputs, logps in replay_batches:
        fresh = inputs[OLD_FROM_LOSS_FIELD]
        assert torch.equal(inputs["old_per_token_logps"][fresh], logps[fresh])
        replayed = (~fresh).nonzero().flatten().tolist()
        for i in replayed:
            width = int(inputs["completion_mask"][i].sum())
            stored = trainer.extra_pass[tuple(inputs["completion_ids"][i, :width].tolist())]
            torch.testing.assert_close(inputs["old_per_token_logps"][i, :width], stored, rtol=1e-5, atol=1e-6)
    assert sum(int((~inputs[OLD_FROM_LOSS_FIELD]).sum()) for inputs, _ in replay_batches) == 4
