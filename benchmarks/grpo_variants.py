"""The GRPO variants the benchmarks compare, and what they record while training.

Shared by ``ssb_efficiency.py`` (learning signal per rollout) and ``ssb_learning.py`` (held-out
accuracy per rollout), so both measure the same three things:

* ``plain``: TRL's GRPO (`SSBGRPOTrainer` with ``ssb_enabled: false``);
* ``ssb``: R1V2's Selective Sample Buffer (zero-advantage slots refilled from the buffer);
* ``dynamic_sampling``: DAPO-style dynamic sampling, defined here as the baseline: zero-std groups
  are dropped and more prompts are generated until the update is full of informative groups (or
  the budget of generated rollouts runs out).

Every variant counts the rollouts it generates (its budget), the informative samples of each
update (non-zero advantage, at least one loss token: what the update learns from), and the share
of freshly generated rollouts whose group had any reward spread (what plain GRPO would get).
"""

from __future__ import annotations

import random
from typing import Any

import torch
from transformers import TrainerCallback

from skywork_rl.trainers.grpo_rows import collate_rows, split_rows
from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer, _loss_mask

VARIANTS = ("plain", "ssb", "dynamic_sampling")


def contains_answer(completions: list, solution: list[str], **kwargs: Any) -> list[float]:
    """1.0 when the gold answer appears in the completion text (a cheap reward for signal counts)."""
    return [
        float(gold in completion[0]["content"])
        for completion, gold in zip(completions, solution, strict=True)
    ]


class Recording:
    """Mixin: counts generated rollouts and their reward, and the informative samples of each update."""

    def __init__(self, *args: Any, budget: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.generated = 0
        self.reward_curve: list[tuple[int, float]] = []  # (rollouts generated so far, mean reward of a batch)
        # (rollouts generated so far, share of the batch's fresh rollouts whose group has reward spread)
        self.fresh_informative_curve: list[tuple[int, float]] = []
        # (rollouts generated so far, share of the update's samples that are informative)
        self.informative_curve: list[tuple[int, float]] = []
        self.informative_per_update: list[int] = []
        self.update_sizes: list[int] = []

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # noqa: ANN001
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.generated += len(prompts)
        weights = self.reward_weights.to(rewards.device)
        total = (torch.nan_to_num(rewards) * weights.unsqueeze(0)).sum(dim=1)
        spread = total.view(-1, self.num_generations).std(dim=1) > 0
        self.fresh_informative_curve.append((self.generated, float(spread.float().mean())))
        self.reward_curve.append((self.generated, float(torch.nanmean(rewards.sum(dim=1)))))
        return rewards

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.model.training:
            informative = (output["advantages"].abs() > self.args.ssb_advantage_threshold) & (
                _loss_mask(output).sum(-1) > 0
            )
            self.informative_per_update.append(int(informative.sum()))
            self.update_sizes.append(informative.numel())
            self.informative_curve.append((self.generated, float(informative.float().mean())))
        return output


class DynamicSamplingGRPOTrainer(SSBGRPOTrainer):
    """DAPO's dynamic sampling as a baseline: keep only groups with non-zero reward std, sample more
    prompts until the generation batch is full of them (or the rollout budget is spent)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prompt_rng = random.Random(self.args.seed)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        size, group = len(inputs), self.num_generations
        kept: list[dict[str, Any]] = []
        while True:
            split = split_rows(super()._generate_and_score_completions(inputs))
            advantages = torch.stack([row["advantages"] for row in split.rows])
            for start in range(0, size, group):
                if (advantages[start : start + group].abs() > self.args.ssb_advantage_threshold).any():
                    kept.extend(split.rows[start : start + group])
            if len(kept) >= size or self.generated >= self.budget:
                break
            picks = [
                self.train_dataset[self._prompt_rng.randrange(len(self.train_dataset))]
                for _ in range(size // group)
            ]
            inputs = [dict(row) for row in picks for _ in range(group)]
        rows = (kept + split.rows)[:size]  # budget spent: fill the rest with the last (uninformative) rows
        output = collate_rows(
            rows, split, pad_token_id=self._tokenizer.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of
        )
        output["num_items_in_batch"] = self.accelerator.gather(_loss_mask(output).sum()).sum()
        return output


class RecordingGRPO(Recording, SSBGRPOTrainer):
    """Plain GRPO or SSB (by ``ssb_enabled``), recording."""


class RecordingDynamicSampling(Recording, DynamicSamplingGRPOTrainer):
    """Dynamic sampling, recording."""


def trainer_class(variant: str) -> type:
    """The recording trainer of a variant (``ssb_enabled`` in the config tells plain from SSB)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {list(VARIANTS)}")
    return RecordingDynamicSampling if variant == "dynamic_sampling" else RecordingGRPO


class StopAtBudget(TrainerCallback):
    """Stops training once the trainer has generated its budget of rollouts."""

    def __init__(self) -> None:
        self.trainer: Recording | None = None

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.trainer is not None and self.trainer.generated >= self.trainer.budget:
            control.should_training_stop = True
        return control
