"""GRPO with hybrid rewards and the Selective Sample Buffer (R1V2, arXiv 2504.16656).

The stage loads the model by recipe, builds the reward functions from the `rewards:` group (rule
rewards such as answer accuracy and format, plus reward-model scores, combined by weight: R1V2's
hybrid reward signal) and trains with `SSBGRPOTrainer`, TRL's `GRPOTrainer` plus R1V2's Selective
Sample Buffer. `training.ssb_enabled: false` is plain TRL GRPO with the same recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skywork_rl.callbacks.config import MonitorArguments, attach_monitors
from skywork_rl.data import DataArguments, load_train_eval
from skywork_rl.models import ModelArguments, load_from_args
from skywork_rl.rewards.config import RewardArguments, build_reward_funcs
from skywork_rl.schema import REQUIRED_COLUMNS
from skywork_rl.stages.base import Stage
from skywork_rl.stages.training import count_trainable, train_and_save
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

# Final values of these logged metrics go into stage.json: whether the run learned, and how much of
# each update carried signal (TRL's zero-std fraction next to the buffer's effect).
_REPORTED = (
    "reward",
    "frac_reward_zero_std",
    "ssb/effective_ratio",
    "ssb/injected",
    "ssb/buffer_size",
    "critical_entropy/mean",
)


@dataclass
class GRPOStageConfig:
    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    rewards: RewardArguments = field(default_factory=RewardArguments)
    training: SkyworkGRPOConfig = field(default_factory=lambda: SkyworkGRPOConfig(output_dir="outputs/grpo"))
    monitor: MonitorArguments = field(default_factory=MonitorArguments)


class GRPOStage(Stage):
    """GRPO with hybrid rewards and R1V2's Selective Sample Buffer (TRL GRPOTrainer subclass)."""

    name = "grpo"
    config_class = GRPOStageConfig

    def run(self) -> dict[str, float]:
        from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer

        cfg: GRPOStageConfig = self.config
        reward_funcs, weights = build_reward_funcs(cfg.rewards)
        _set_reward_weights(cfg.training, weights, len(reward_funcs))
        model, processor = load_from_args(cfg.model)
        train, evaluation = load_train_eval(cfg.data, REQUIRED_COLUMNS)
        trainer = SSBGRPOTrainer(
            model=model,
            reward_funcs=reward_funcs,
            args=cfg.training,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=processor,
        )
        attach_monitors(trainer, cfg.monitor, train)
        metrics = train_and_save(trainer, processor)
        metrics.update(final_logged(trainer.state.log_history, _REPORTED))
        metrics.update(count_trainable(model))
        return metrics


def _set_reward_weights(training: SkyworkGRPOConfig, weights: list[float] | None, count: int) -> None:
    """Weights come from `rewards:`; `training.reward_weights`, when set, must agree with them in length."""
    if training.reward_weights is None:
        training.reward_weights = list(weights) if weights is not None else None
        return
    if len(training.reward_weights) != count:
        raise ValueError(
            f"training.reward_weights has {len(training.reward_weights)} weights but rewards: builds {count} "
            "reward functions; set the weights under rewards: and drop training.reward_weights"
        )


def final_logged(history: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, float]:
    """The last logged value of each key (as `final_<key>`), for the stage's metrics."""
    found: dict[str, float] = {}
    for entry in history:
        for key in keys:
            if key in entry and entry[key] is not None:
                found[f"final_{key}"] = float(entry[key])
    return found
