"""What TRL's `GRPOTrainer` keeps outside the checkpoint, put back on resume so GRPO continues exactly.

Two pieces of GRPO state live only in memory in TRL:

- The generation cycle. `_prepare_inputs` generates once per ``steps_per_generation * num_iterations``
  micro-steps, keeps the generated batch in `_buffered_inputs` and feeds it slice by slice, counting
  micro-steps in `_step`. A resumed TRL run restarts `_step` at 0 with no batch, so a run stopped in the
  middle of a cycle regenerates (other completions, from other weights) where the uninterrupted run
  trained on its stored slices. We save `_step` and, when the checkpoint falls inside a cycle, the
  stored batch; both come back before the first resumed step.
- The prompt order after the first epoch. `RepeatSampler` shuffles with its own generator, drawn once
  per epoch and never reseeded, so a fresh sampler in a resumed run replays epoch 0's order. Trainer
  calls `set_epoch(epoch)` on the sampler before each epoch; ours replays the draws of the epochs before,
  which leaves the generator exactly where TRL's continuous one is (an uninterrupted run is unchanged).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from trl.trainer.utils import RepeatSampler

from skywork_rl.records.atomic import save_atomic
from skywork_rl.trainers.resume import ExactResumeMixin, ResumeError

GENERATION_FILE = "grpo_generation_rank{rank}.pt"
# TRL's adaptive entropy control writes this after trainer_state.json; a checkpoint needs it when it is on.
ENTROPY_CONTROL_FILE = "entropy_ctrl_state.json"


class EpochSeekableRepeatSampler(RepeatSampler):
    """TRL's `RepeatSampler` whose shuffle for epoch ``e`` can be re-created by a fresh instance."""

    def set_epoch(self, epoch: int) -> None:
        if not self.shuffle or self.seed is None:
            return  # unshuffled: nothing to restore; unseeded: not reproducible in the first place
        self.generator.manual_seed(self.seed)
        for _ in range(epoch):  # `__iter__` draws one permutation per epoch
            torch.randperm(self.num_samples, generator=self.generator)


class GRPOResumeMixin(ExactResumeMixin):
    """`ExactResumeMixin` plus TRL GRPO's generation cycle and epoch order (see the module doc)."""

    _step: int
    _buffered_inputs: list[dict[str, Any]] | None
    num_iterations: int

    def _get_train_sampler(self, dataset: Any = None) -> Any:
        sampler = super()._get_train_sampler(dataset)  # type: ignore[misc]
        if type(sampler) is not RepeatSampler:
            return sampler
        # TRL's choices, read back from its sampler; only `set_epoch` is added.
        return EpochSeekableRepeatSampler(
            sampler.data_source,
            mini_repeat_count=sampler.mini_repeat_count,
            batch_size=sampler.batch_size,
            repeat_count=sampler.repeat_count,
            shuffle=sampler.shuffle,
            seed=sampler.seed,
        )

    def resume_state_files(self) -> list[str]:
        files = [*super().resume_state_files(), GENERATION_FILE]
        if getattr(self, "use_adaptive_entropy", False):
            files.append(ENTROPY_CONTROL_FILE)
        return files

    def _generate_every(self) -> int:
        return self.args.steps_per_generation * self.num_iterations

    def save_resume_state(self, folder: str) -> None:
        super().save_resume_state(folder)
        inside_cycle = self._step % self._generate_every() != 0
        state = {
            "step": self._step,
            "generate_every": self._generate_every(),
            "steps_per_generation": self.args.steps_per_generation,
            # Only a checkpoint inside a cycle needs the batch; at a cycle boundary the next step generates.
            "buffered_inputs": self._buffered_inputs if inside_cycle else None,
        }
        path = os.path.join(folder, GENERATION_FILE.format(rank=self.accelerator.process_index))
        save_atomic(torch.save, state, path)

    def load_resume_state(self, folder: str) -> None:
        super().load_resume_state(folder)
        path = os.path.join(folder, GENERATION_FILE.format(rank=self.accelerator.process_index))
        state = torch.load(path, map_location=self.accelerator.device, weights_only=True)
        layout = (state["generate_every"], state["steps_per_generation"])
        now = (self._generate_every(), self.args.steps_per_generation)
        if state["buffered_inputs"] is not None and layout != now:
            raise ResumeError(
                f"checkpoint {folder} was saved inside a generation cycle with steps_per_generation * "
                f"num_iterations = {layout[0]} (steps_per_generation {layout[1]}); this run has {now[0]} "
                f"({now[1]}). Resume with the settings it was saved with, or from a checkpoint at a cycle boundary"
            )
        self._step = state["step"]
        self._buffered_inputs = state["buffered_inputs"]
