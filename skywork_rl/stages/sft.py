"""Cold-start SFT: fine-tuning on verified reasoning traces, images included.

R1V3's post-training starts with a cold-start fine-tuning stage on a refined set of reasoning
traces that teaches the reasoning style (`<think>` ... `</think>` then the answer) before RL.
TRL's `SFTTrainer` does the work (`SkyworkSFTTrainer` adds exact resume); the stage only loads the
model by recipe, freezes the parts the recipe keeps fixed (default: the LLM and the connector
train, the vision encoder stays frozen), and trains on canonical rows (`prompt` + `completion` +
`images`, loss on the completion only, TRL's default for prompt-completion data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig

from skywork_rl.callbacks.config import MonitorArguments
from skywork_rl.data.loading import DataArguments
from skywork_rl.families.parts import ModelArguments
from skywork_rl.miniature.heldout import HeldoutArguments
from skywork_rl.stages.training import MONITOR_REPORT_KEYS, TrainingStage
from skywork_rl.trainers.resume import resume_from_checkpoint_field
from skywork_rl.trainers.sft import SkyworkSFTTrainer


@dataclass
class SkyworkSFTConfig(SFTConfig):
    """TRL's `SFTConfig`; every TRL/transformers training option works under `training:`."""

    resume_from_checkpoint: str | None = resume_from_checkpoint_field()


@dataclass
class SFTStageConfig:
    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    training: SkyworkSFTConfig = field(default_factory=lambda: SkyworkSFTConfig(output_dir="outputs/sft"))
    monitor: MonitorArguments = field(default_factory=MonitorArguments)
    heldout: HeldoutArguments = field(default_factory=HeldoutArguments)


class SFTStage(TrainingStage):
    """Cold-start SFT on verified reasoning traces with images (TRL SFTTrainer)."""

    name = "sft"
    config_class = SFTStageConfig
    report_keys = ("first_loss", "final_loss", *MONITOR_REPORT_KEYS)
    required_columns = ("prompt", "completion")
    # `images` is optional so text-only reasoning traces (GSM8K/MATH distillations) train too.
    trainer_columns = ("prompt", "completion", "images")

    def build_trainer(self, model: Any, processor: Any, train: Any, evaluation: Any) -> Any:
        return SkyworkSFTTrainer(
            model=model,
            args=self.config.training,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=processor,
        )
