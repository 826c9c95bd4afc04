"""`SkyworkSFTTrainer`: TRL's `SFTTrainer` whose checkpoints resume exactly (see `skywork_rl.trainers.resume`)
and that refuses data it would hang on under ZeRO-3 / FSDP (see `skywork_rl.trainers.vision_batches`)."""

from __future__ import annotations

from trl import SFTTrainer

from skywork_rl.trainers.resume import ExactResumeMixin
from skywork_rl.trainers.vision_batches import VisionBatchGuardMixin


class SkyworkSFTTrainer(VisionBatchGuardMixin, ExactResumeMixin, SFTTrainer):
    """`SFTTrainer` that resumes a checkpoint's weights (not the input's) and refuses an incomplete checkpoint."""
