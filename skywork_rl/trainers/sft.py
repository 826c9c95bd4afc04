"""`SkyworkSFTTrainer`: TRL's `SFTTrainer` whose checkpoints resume exactly (see `skywork_rl.trainers.resume`)
and that keeps the vision tower in step on text-only batches under ZeRO-3 / FSDP (see
`skywork_rl.trainers.vision_batches`)."""

from __future__ import annotations

from trl import SFTTrainer

from skywork_rl.trainers.family_inputs import FamilyCollatorMixin
from skywork_rl.trainers.resume import ExactResumeMixin
from skywork_rl.trainers.vision_batches import VisionBatchesInStepMixin


class SkyworkSFTTrainer(VisionBatchesInStepMixin, FamilyCollatorMixin, ExactResumeMixin, SFTTrainer):
    """`SFTTrainer` that resumes a checkpoint's weights (not the input's) and refuses an incomplete checkpoint."""
