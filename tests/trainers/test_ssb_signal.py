"""Honest SSB metrics: the tokens that still carry gradient after clipping, and how old the replays are."""

from __future__ import annotations

import math

import pytest
import torch
from trainers.test_ssb_grpo import _trainer

from skywork_rl.trainers.clipped_tokens import effective_token_counts
from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer

# Three samples, three completion tokens each. Sample 0 (A > 0) has ratios 1, 1.5, 0.5; sample 1
# (A < 0, last token padding) has 0.5, 1.5; sample 2 has A = 0 (uninformative).
LOGPS = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, -7.0], [-1.0, -1.0, -1.0]])
OLD = LOGPS - torch.log(torch.tensor([[1.0, 1.5, 0.5], [0.5, 1.5, 1.0], [1.0, 1.0, 1.0]]))
ADVANTAGES = torch.tensor([1.0, -1.0, 0.0])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1]])


def _counts(old: torch.Tensor | None = OLD, **overrides) -> tuple[float, float]:
    options = dict(
        loss_type="dapo",
        importance_sampling_level="token",
        epsilon_low=0.2,
        epsilon_high=0.2,
        delta=None,
        advantage_threshold=1e-3,
    )
    options.update(overrides)
    kept, total = effective_token_counts(LOGPS, old, ADVANTAGES, MASK, **options)
    return kept.item(), total.item()


@pytest.mark.parametrize(
    ("overrides", "kept"),
    [
        # 1.5 > 1 + 0.2 with A > 0 is clipped; 0.5 with A > 0 is not. 0.5 < 1 - 0.2 with A < 0 is clipped.
        ({}, 2 + 1),
        # Two-sided clipping (delta 1.4) also zeroes 1.5 with A < 0.
        ({"delta": 1.4}, 2 + 0),
        # Sequence level: one ratio per sample, exp(mean log ratio): (1 * 1.5 * 0.5) ** (1/3) = 0.91 and
        # (0.5 * 1.5) ** (1/2) = 0.87, both inside [0.8, 1.2]: nothing is clipped.
        ({"importance_sampling_level": "sequence"}, 3 + 2),
        # cispo clamps a detached weight: no token loses its gradient.
        ({"loss_type": "cispo"}, 3 + 2),
        # A wider clip range keeps everything.
        ({"epsilon_low": 0.6, "epsilon_high": 0.6}, 3 + 2),
    ],
)
def test_effective_token_counts_match_a_hand_count(overrides, kept):
    assert _counts(**overrides) == (kept, 8.0)  # 8 loss tokens; sample 2's three never count as kept


def test_no_old_log_probs_means_ratio_one_and_nothing_clipped():
    assert _counts(None, loss_type="grpo") == (5.0, 8.0)


class RecordingLoss(SSBGRPOTrainer):
    """Keeps, per micro-batch, what TRL's loss saw: its inputs and its forward's log-probs."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[dict, torch.Tensor]] = []
        self._forward_logps: torch.Tensor | None = None

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if torch.is_grad_enabled():
            self._forward_logps = result[0].detach().clone()
        return result

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        keep = ("advantages", "completion_mask", "old_per_token_logps")
        self.seen.append(({k: inputs[k].clone() for k in keep if k in inputs}, self._forward_logps))
        return loss


def _hand_ratio(inputs: dict, logps: torch.Tensor, epsilon: float) -> float:
    """Loss tokens of informative samples whose clipped-surrogate gradient survives, over all loss tokens."""
    kept = total = 0
    old = inputs.get("old_per_token_logps", logps)
    for i, advantage in enumerate(inputs["advantages"].tolist()):
        for t in range(logps.size(1)):
            if not inputs["completion_mask"][i, t]:
                continue
            total += 1
            ratio = math.exp(logps[i, t].item() - old[i, t].item())
            clipped = (advantage > 0 and ratio > 1 + epsilon) or (advantage < 0 and ratio < 1 - epsilon)
            kept += abs(advantage) > 1e-3 and not clipped
    return kept / total


@pytest.mark.slow
def test_effective_token_ratio_and_replay_age_are_logged_as_counted_by_hand(tiny_internvl, tmp_path):
    # Step 1 fills the buffer; steps 2 and 3 are all zero-std and replay 2 of its samples at ages 1 and 2.
    # A large learning rate and a narrow clip make the replays drift out of the clip range.
    epsilon = 0.02
    trainer = _trainer(
        tiny_internvl, tmp_path, max_steps=3, learning_rate=5e-2, epsilon=epsilon, trainer_class=RecordingLoss
    )
    trainer.train()

    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == len(trainer.seen) == 3
    for log, (inputs, logps) in zip(logs, trainer.seen, strict=True):
        assert log["ssb/effective_token_ratio"] == pytest.approx(
            _hand_ratio(inputs, logps, epsilon), abs=1e-6
        )
    assert "ssb/replay_age_mean" not in logs[0]  # nothing replayed at the first step
    assert [logs[1]["ssb/replay_age_mean"], logs[2]["ssb/replay_age_mean"]] == [1.0, 2.0]
    # The first update is all fresh and informative (ratio 1): every token counts. The replays have
    # drifted, so fewer tokens carry gradient than samples are informative.
    assert logs[0]["ssb/effective_token_ratio"] == logs[0]["ssb/effective_ratio"] == 1.0
    assert logs[2]["ssb/effective_token_ratio"] < logs[2]["ssb/effective_ratio"] == 0.5


def test_tokens_dropped_by_trls_importance_sampling_mask_never_count_as_kept():
    # TRL's token_mask mode zeroes sample 0's second token and all of sample 1's: they carry no gradient.
    ratio = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    from skywork_rl.trainers.grpo_rows import weighted_token_mask

    weighted = weighted_token_mask({"completion_mask": MASK, "importance_sampling_ratio": ratio})
    assert _counts(loss_type="cispo", weighted_mask=weighted) == (2.0, 8.0)  # 3 + 2 without the mask
