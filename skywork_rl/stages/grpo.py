"""GRPO with hybrid rewards and the Selective Sample Buffer (R1V2, arXiv 2504.16656).

The stage loads the model by recipe, builds the reward functions from the `rewards:` group (rule
rewards such as answer accuracy and format, plus reward-model scores, combined by weight: R1V2's
hybrid reward signal) and trains with `SSBGRPOTrainer`, TRL's `GRPOTrainer` plus R1V2's Selective
Sample Buffer. `training.ssb_enabled: false` is plain TRL GRPO with the same recipe.
`training.save_prompt_pool: true` also writes R1V2's filtered prompt pool to
`<output_dir>/prompt_pool` (see `skywork_rl.trainers.prompt_pool`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skywork_rl.callbacks.config import MonitorArguments
from skywork_rl.data.loading import DataArguments
from skywork_rl.data.schema import REQUIRED_COLUMNS
from skywork_rl.families.parts import ModelArguments
from skywork_rl.miniature.heldout import HeldoutArguments
from skywork_rl.rewards.config import RewardArguments
from skywork_rl.rewards.registry import build_reward_funcs
from skywork_rl.stages.training import MONITOR_REPORT_KEYS, TrainingStage
from skywork_rl.trainers.prompt_pool import write_prompt_pool
from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

logger = logging.getLogger("skywork_rl")

PROMPT_POOL_DIR = "prompt_pool"


@dataclass
class GRPOStageConfig:
    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    rewards: RewardArguments = field(default_factory=RewardArguments)
    training: SkyworkGRPOConfig = field(default_factory=lambda: SkyworkGRPOConfig(output_dir="outputs/grpo"))
    monitor: MonitorArguments = field(default_factory=MonitorArguments)
    heldout: HeldoutArguments = field(default_factory=HeldoutArguments)


class GRPOStage(TrainingStage):
    """GRPO with hybrid rewards and R1V2's Selective Sample Buffer (TRL GRPOTrainer subclass)."""

    name = "grpo"
    config_class = GRPOStageConfig
    # Whether the run learned, and how much of each update carried signal (TRL's zero-std fraction next
    # to the buffer's effect). GRPO's loss is advantage-weighted and hovers at 0 by construction.
    report_keys = (
        "final_reward",
        "final_frac_reward_zero_std",
        "final_ssb/effective_ratio",
        "final_ssb/effective_token_ratio",
        "final_ssb/injected",
        "prompt_pool/rows",
        *MONITOR_REPORT_KEYS,
    )
    required_columns = REQUIRED_COLUMNS
    # One home for the reward weights: `rewards:` pairs them with its functions (and `mix: hybrid`
    # weights its parts itself, when TRL gets one function), and the stage hands them to TRL.
    moved_keys = {
        "training.reward_weights": "set the weights under rewards.reward_weights (one per "
        "rewards.reward_funcs entry); the stage passes them to TRL's GRPOConfig.reward_weights"
    }
    logged_keys = (
        "reward",
        "frac_reward_zero_std",
        "ssb/effective_ratio",
        "ssb/effective_token_ratio",
        "ssb/injected",
        "ssb/replay_age_mean",
        "ssb/buffer_size",
        "ssb/buffer_bytes",
        "critical_entropy/mean",
    )

    def setup(self) -> None:
        # Rewards first: a reward recipe error (unknown name, bad weights) fails before the model loads.
        self.reward_funcs, self.config.training.reward_weights = build_reward_funcs(self.config.rewards)

    def load_data(self) -> tuple[Any, Any]:
        train, evaluation = super().load_data()
        self.train_rows = train  # the rows the prompt pool selects from
        return train, evaluation

    def build_trainer(self, model: Any, processor: Any, train: Any, evaluation: Any) -> Any:
        return SSBGRPOTrainer(
            model=model,
            reward_funcs=self.reward_funcs,
            args=self.config.training,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=processor,
        )

    def stage_metrics(self, trainer: Any) -> dict[str, float]:
        if not self.config.training.save_prompt_pool:
            return {}

        counts = trainer.prompt_pool_counts  # equal on every process (gathered as counted)
        if trainer.accelerator.is_main_process:
            folder = Path(self.config.training.output_dir) / PROMPT_POOL_DIR
            write_prompt_pool(self.train_rows, counts, folder)
            logger.info("prompt pool: %d of %d train rows -> %s", len(counts), len(self.train_rows), folder)
            if not counts:
                logger.warning("prompt pool: no group carried a non-zero advantage; %s holds no rows", folder)
        trainer.accelerator.wait_for_everyone()
        return {"prompt_pool/rows": len(counts), "prompt_pool/informative_groups": sum(counts.values())}
