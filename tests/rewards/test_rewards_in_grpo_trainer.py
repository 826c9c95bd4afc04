"""The built rewards run inside TRL's GRPOTrainer and their metrics reach its logs."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.slow
def test_hybrid_rewards_log_components_and_failures_in_a_real_grpo_step(grpo_step_logged_keys: Any) -> None:
    from skywork_rl.rewards.config import RewardArguments

    logged = grpo_step_logged_keys(
        RewardArguments(
            reward_funcs=["accuracy", "format_soft"], reward_weights=[0.9, 0.1], mix="hybrid", num_workers=1
        )
    )
    assert {
        "rewards/hybrid/mean",
        "rewards/hybrid/accuracy/mean",
        "rewards/hybrid/format_soft/mean",
    } <= logged
    assert {"rewards/accuracy/failures", "rewards/accuracy/no_answer"} <= logged
