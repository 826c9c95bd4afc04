"""MPO stage (R1V2, arXiv 2504.16656, MPO section): Mixed Preference Optimization on preference pairs with images.

R1V2 starts its hybrid RL with MPO on pairs labelled by a reward model and rule checks (built by
`data_prep.preference_pairs` / the ``preference-pairs`` stage). The objective is TRL's multi-loss
DPO: ``loss_type: [sigmoid, bco_pair, sft]`` with ``loss_weights`` (preference, quality and
generation losses). The stage loads the model by recipe, freezes the parts the recipe keeps
fixed, and trains with `MPOTrainer` (TRL `DPOTrainer` + a metric per loss term) on canonical
preference rows (``prompt``, ``chosen``, ``rejected``, ``images``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import DPOConfig

from skywork_rl.callbacks.config import MonitorArguments
from skywork_rl.data.loading import DataArguments
from skywork_rl.families.parts import ModelArguments
from skywork_rl.miniature.heldout import HeldoutArguments
from skywork_rl.stages.training import MONITOR_REPORT_KEYS, TrainingStage
from skywork_rl.trainers.mpo import LOGGED_TERMS, MPOTrainer
from skywork_rl.trainers.resume import resume_from_checkpoint_field

# MPO's three terms with the weights of InternVL's MPO (arXiv 2411.10442), the formulation R1V2
# adopts; also TRL's documented MPO example (DPOConfig.loss_weights help).
MPO_LOSS_TYPES = ["sigmoid", "bco_pair", "sft"]
MPO_LOSS_WEIGHTS = [0.8, 0.2, 1.0]
_PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass
class SkyworkMPOConfig(DPOConfig):
    """TRL's `DPOConfig` with MPO's loss mix as the default; every DPO option works under `training:`."""

    loss_type: list[str] = field(
        default_factory=lambda: list(MPO_LOSS_TYPES),
        metadata={
            "help": "Loss terms combined by loss_weights (MPO: sigmoid preference, bco_pair quality, sft)."
        },
    )
    loss_weights: list[float] | None = field(
        default_factory=lambda: list(MPO_LOSS_WEIGHTS),
        metadata={"help": "One weight per loss_type entry (MPO: 0.8, 0.2, 1.0)."},
    )
    resume_from_checkpoint: str | None = resume_from_checkpoint_field()


@dataclass
class MPOStageConfig:
    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    training: SkyworkMPOConfig = field(default_factory=lambda: SkyworkMPOConfig(output_dir="outputs/mpo"))
    monitor: MonitorArguments = field(default_factory=MonitorArguments)
    heldout: HeldoutArguments = field(default_factory=HeldoutArguments)


class MPOStage(TrainingStage):
    """Mixed Preference Optimization (R1V2) with images on TRL's DPOTrainer."""

    name = "mpo"
    config_class = MPOStageConfig
    report_keys = (
        "first_loss",
        "final_loss",
        "final_rewards/accuracies",
        "final_rewards/margins",
        *MONITOR_REPORT_KEYS,
    )
    required_columns = _PREFERENCE_COLUMNS
    # Only what DPOTrainer's vision collator reads; `solution`/`source`/scores would reach it otherwise.
    trainer_columns = (*_PREFERENCE_COLUMNS, "images")
    # One metric per loss term (`MPOTrainer` logs those of the configured `loss_type`) and DPO's own.
    logged_keys = (*(f"mpo/loss_{t}" for t in LOGGED_TERMS), "rewards/accuracies", "rewards/margins")

    def load_data(self) -> tuple[Any, Any]:
        train, evaluation = super().load_data()
        if len(train) == 0:
            raise ValueError(
                f"data.train ({self.config.data.train}): no preference pairs; see the pairs step's manifest.json "
                "for why every prompt was dropped (e.g. no correct or no wrong rollout)"
            )
        return train, evaluation

    def build_trainer(self, model: Any, processor: Any, train: Any, evaluation: Any) -> Any:
        return MPOTrainer(
            model=model,
            args=self.config.training,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=processor,
        )
