"""`SkyworkSFTTrainer`: TRL's `SFTTrainer` whose checkpoints resume exactly (see `skywork_rl.trainers.resume`)."""

from __future__ import annotations

from trl import SFTTrainer

from skywork_rl.trainers.family_inputs import FamilyCollatorMixin
from skywork_rl.trainers.resume import ExactResumeMixin


class SkyworkSFTTrainer(FamilyCollatorMixin, ExactResumeMixin, SFTTrainer):
    """`SFTTrainer` that resumes a checkpoint's weights (not the input's) and refuses an incomplete checkpoint."""
