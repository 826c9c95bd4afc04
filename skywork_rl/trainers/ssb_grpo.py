"""`SSBGRPOTrainer`: TRL's `GRPOTrainer` plus R1V2's Selective Sample Buffer (arXiv 2504.16656).

R1V2 ("Selective Sample Buffer"): as training goes on, more and more GRPO groups get the same reward
for every rollout, their advantages vanish and the update loses its signal. SSB caches samples with
non-zero advantage and re-introduces them, drawn by |advantage|, into later updates.

A sample is informative (`skywork_rl.trainers.grpo_rows.informative_samples`) when |A| is above
``ssb_advantage_threshold`` and the update still weighs one of its tokens: TRL's vLLM
importance-sampling correction (``sequence_mask`` / ``token_mask``) can zero a whole sequence, and
such a sample is neither buffered, nor replayed, nor counted in ``ssb/effective_ratio``.

The main hook is `_generate_and_score_completions`, where TRL has generated, scored and computed
advantages for the whole local generation batch (all `steps_per_generation` micro-batches) and
before `_prepare_inputs` shuffles and splits it. There we (1) put buffered samples in the slots of
uninformative ones and (2) take this batch's informative samples (token ids, masks, image tensors,
advantages, log-probs) for the buffer (`ssb_storage`: compact host copies). The batch keeps its
size, so TRL's split for `steps_per_generation`, gradient accumulation and every loss type work
unchanged.

Replayed samples keep their stored advantage and old (behaviour-policy) log-probs. The advantage
cannot be recomputed: it is relative to a group whose other members are gone. The stored log-probs
are those of the policy that generated the sample, so TRL's ratio pi_theta / pi_old is the correct
importance weight for an off-policy sample and its clipping bounds the update; recomputing them
under the current policy would claim the sample is on-policy (ratio 1) when it is not. The
reference log-probs (KL term) stay valid as the reference model does not change (`sync_ref_model`,
which changes it, is refused together with SSB by `SkyworkGRPOConfig`).

Behaviour log-probs of fresh samples, at no extra forward. When generation and optimizer steps are
misaligned (or vLLM's importance-sampling correction is on), TRL computes old log-probs itself and
the buffer stores them. When they are aligned TRL skips them: the policy cannot move before every
row of the generation batch has been through the loss, so the loss forward's own log-probs, taken
before any update, *are* the behaviour log-probs. `_get_per_token_logps_and_entropies` (TRL's
forward) keeps them during `_compute_loss`; the rows flagged for the buffer (`PENDING_FIELD`) copy
theirs, and the samples enter the buffer once the first pass over the generation batch is done.
In a batch that mixes replays (with stored log-probs) and fresh rows, the fresh rows' old log-probs
are set from the same forward (`OLD_FROM_LOSS_FIELD`), exactly what TRL substitutes when it has
none. No configuration of TRL 1.16 needs an extra forward: every loss goes through that method.
The same hook gives `ssb/effective_token_ratio` (`clipped_tokens`) from the loss's own ratio.

Processes: each holds its own buffer of its own samples (image tensors never cross processes).
Every process gathers the same metrics at the same points, and every collective call is made by
all processes whatever their buffers hold: no process can wait on a collective another skips.

Checkpoints hold every process's buffer (`ssb_buffer_rank{r}.pt`, written atomically before
`trainer_state.json`, see `skywork_rl.trainers.resume`), so a resumed run replays what the
uninterrupted one would have. Behaviour log-probs taken from the loss are complete at every
checkpoint: with aligned steps, checkpoints fall between generation cycles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer

from skywork_rl.records.atomic import save_atomic
from skywork_rl.trainers.clipped_tokens import effective_token_counts
from skywork_rl.trainers.family_inputs import FamilyGRPOMixin
from skywork_rl.trainers.grpo_resume import GRPOResumeMixin
from skywork_rl.trainers.grpo_rows import (
    SplitBatch,
    collate_rows,
    informative_samples,
    loss_mask,
    sample_fields,
    split_rows,
    weighted_token_mask,
)
from skywork_rl.trainers.prompt_pool import PromptPoolMixin
from skywork_rl.trainers.reward_checks import RewardCheckMixin
from skywork_rl.trainers.ssb_buffer import SelectiveSampleBuffer
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig
from skywork_rl.trainers.ssb_storage import compact_rows, restore_row, stored_bytes, vision_dtype
from skywork_rl.trainers.vision_batches import VisionBatchesInStepMixin

BUFFER_FILE = "ssb_buffer_rank{rank}.pt"
# Per-row fields we add to a generation batch when behaviour log-probs come from the loss forward.
PENDING_FIELD = "ssb_pending"  # index into the samples awaiting their log-probs, -1 for other rows
OLD_FROM_LOSS_FIELD = "ssb_old_from_loss"  # fresh rows of a batch with replays: old log-probs = loss's


@dataclass
class _Pending:
    """Informative samples of one generation, waiting for their log-probs from the loss forward."""

    payloads: list[dict[str, Any]]
    advantages: list[float]
    step: int
    kind: tuple[str, ...]


class SSBGRPOTrainer(
    RewardCheckMixin,
    VisionBatchesInStepMixin,
    FamilyGRPOMixin,
    PromptPoolMixin,
    GRPOResumeMixin,
    GRPOTrainer,
):
    """GRPO whose updates keep a learning signal: zero-advantage samples are swapped for buffered ones."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, SkyworkGRPOConfig):
            raise TypeError(
                f"SSBGRPOTrainer needs a SkyworkGRPOConfig (for its ssb_* options), got {type(self.args).__name__}"
            )
        self.ssb = SelectiveSampleBuffer(
            self.args.ssb_capacity,
            priority_exponent=self.args.ssb_priority_exponent,
            max_age=self.args.ssb_max_age,
            advantage_threshold=self.args.ssb_advantage_threshold,
            seed=self.args.seed + self.accelerator.process_index,
        )
        self._pending: _Pending | None = None
        self._behaviour_from_loss = False
        self._loss_inputs: dict[str, Any] | None = None
        self._loss_logps: torch.Tensor | None = None
        self._pixel_dtype: torch.dtype | None = None
        self._pixel_dtype_known = False

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if not self.args.ssb_enabled or not self.model.training:
            return output  # evaluation measures the policy on fresh rollouts only
        return self._apply_selective_sample_buffer(output)

    def _apply_selective_sample_buffer(self, output: dict[str, Any]) -> dict[str, Any]:
        device = output["prompt_ids"].device
        step = self.state.global_step
        advantages = output["advantages"]
        informative = informative_samples(output, self.args.ssb_advantage_threshold)
        slots = (~informative).nonzero().flatten().tolist()
        fresh = informative.nonzero().flatten().tolist()
        # TRL skips old log-probs exactly when the policy stays put until the loss has seen every row.
        self._behaviour_from_loss = "old_per_token_logps" not in output
        if self._pending is not None:
            raise RuntimeError("SSB: samples of the previous generation never got their log-probs")
        # Buffered rows always carry behaviour log-probs, so the kind counts that field in.
        kind = tuple(sorted({*sample_fields(output), "old_per_token_logps"}))

        self.ssb.evict_stale(step)
        cap = int(self.args.ssb_max_fill_ratio * advantages.numel())
        n_inject = min(len(slots), self.ssb.count(kind), cap)
        drawn = []
        if n_inject or fresh:
            split = split_rows(output)
            drawn = self.ssb.sample(n_inject, step=step, kind=kind)
            # Staged (pushed or pending) after drawing, so that a batch never replays its own samples.
            staged = _Pending(
                compact_rows([split.rows[i] for i in fresh], pixel_dtype=self._pixel_storage_dtype()),
                advantages[fresh].tolist(),
                step,
                kind,
            )
            if drawn:
                output = self._replace_rows(split, slots, drawn, device)
            if not self._behaviour_from_loss:
                self.ssb.push(staged.payloads, staged.advantages, step=step, kind=kind)
            elif fresh:
                self._pending = staged
                index = torch.full((advantages.numel(),), -1, dtype=torch.long, device=device)
                index[fresh] = torch.arange(len(fresh), device=device)
                output[PENDING_FIELD] = index
        # dapo / cispo / vespo normalise by the loss tokens of the whole generation batch on all processes.
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask(output).sum()).sum()
        self._log_generation_metrics(output, [step - s.step for s in drawn], device)
        return output

    def _replace_rows(
        self, split: SplitBatch, slots: list[int], drawn: list[Any], device: torch.device
    ) -> dict[str, Any]:
        """The batch with `drawn` buffered samples in the first `len(drawn)` uninformative `slots`."""
        rows = list(split.rows)
        if self._behaviour_from_loss:  # placeholders, set from the loss forward (`OLD_FROM_LOSS_FIELD`)
            rows = [
                dict(row, old_per_token_logps=torch.zeros(len(row["completion_ids"]), device=device))
                for row in rows
            ]
        for slot, sample in zip(slots, drawn, strict=False):
            rows[slot] = restore_row(sample.payload, like=split.rows[slot])
        batch = collate_rows(
            rows,
            split,
            pad_token_id=self._tokenizer.pad_token_id,
            pad_to_multiple_of=self.pad_to_multiple_of,
            device=device,
        )
        if self._behaviour_from_loss:
            from_loss = torch.ones(len(rows), dtype=torch.bool, device=device)
            from_loss[slots[: len(drawn)]] = False
            batch[OLD_FROM_LOSS_FIELD] = from_loss
        return batch

    def _pixel_storage_dtype(self) -> torch.dtype | None:
        # Read at the first push, after `accelerator.prepare` (DeepSpeed casts the weights to bf16 there).
        if not self._pixel_dtype_known:
            self._pixel_dtype = vision_dtype(self.accelerator.unwrap_model(self.model))
            self._pixel_dtype_known = True
        return self._pixel_dtype

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        if not (self.args.ssb_enabled and self.model.training):
            return super()._compute_loss(model, inputs)
        self._loss_inputs, self._loss_logps = inputs, None
        try:
            loss = super()._compute_loss(model, inputs)
            logps = self._loss_logps
        finally:
            self._loss_inputs = self._loss_logps = None
        if logps is None:
            raise RuntimeError(
                "SSB: GRPOTrainer._compute_loss no longer calls _get_per_token_logps_and_entropies"
            )
        self._log_effective_tokens(inputs, logps)
        self._take_behaviour_logps(inputs, logps)
        return loss

    def _get_per_token_logps_and_entropies(self, *args: Any, **kwargs: Any) -> Any:
        result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        inputs = self._loss_inputs
        if inputs is not None and self._loss_logps is None:  # the loss forward of `_compute_loss`
            self._loss_logps = logps = result[0].detach()
            if OLD_FROM_LOSS_FIELD in inputs:  # read by `_compute_loss` right after this forward
                old = inputs["old_per_token_logps"]
                fill = inputs[OLD_FROM_LOSS_FIELD].unsqueeze(1)
                inputs["old_per_token_logps"] = torch.where(fill, logps.to(old.dtype), old)
        return result

    def _take_behaviour_logps(self, inputs: dict[str, Any], logps: torch.Tensor) -> None:
        """Copy the pending rows' log-probs; after the first pass over the generation batch, push them."""
        index = inputs.get(PENDING_FIELD)
        if index is not None and self._pending is not None:
            for row, k in enumerate(index.tolist()):
                payload = self._pending.payloads[k] if k >= 0 else None
                if payload is not None and "old_per_token_logps" not in payload:  # first pass only
                    width = len(payload["completion_ids"])
                    payload["old_per_token_logps"] = logps[row, :width].float().cpu().clone()
        first_pass_done = self._step % self._generate_every() == self.args.steps_per_generation - 1
        if self._behaviour_from_loss and first_pass_done:
            pending, self._pending = self._pending, None
            if pending is not None:
                missing = sum("old_per_token_logps" not in p for p in pending.payloads)
                if missing:
                    raise RuntimeError(f"SSB: {missing} buffered samples never went through the loss forward")
                self.ssb.push(pending.payloads, pending.advantages, step=pending.step, kind=pending.kind)
            self._log_buffer_metrics(logps.device)

    def _log_effective_tokens(self, inputs: dict[str, Any], logps: torch.Tensor) -> None:
        counts = effective_token_counts(
            logps,
            inputs.get("old_per_token_logps"),
            inputs["advantages"],
            loss_mask(inputs),
            loss_type=self.loss_type,
            importance_sampling_level=self.importance_sampling_level,
            epsilon_low=self.epsilon_low,
            epsilon_high=self.epsilon_high,
            delta=self.args.delta,
            advantage_threshold=self.args.ssb_advantage_threshold,
            weighted_mask=weighted_token_mask(inputs),
        )
        total = self.accelerator.reduce(torch.stack(counts).float(), reduction="sum")
        self._metrics["train"]["ssb/effective_token_ratio"].append(
            (total[0] / total[1].clamp(min=1.0)).item()
        )

    def _log_generation_metrics(self, output: dict[str, Any], ages: list[int], device: torch.device) -> None:
        effective = informative_samples(output, self.args.ssb_advantage_threshold)
        values = [float(effective.sum()), float(effective.numel()), float(len(ages)), float(sum(ages))]
        total = self.accelerator.gather(torch.tensor([values], device=device)).sum(dim=0).tolist()
        metrics = self._metrics["train"]
        metrics["ssb/effective_ratio"].append(total[0] / max(total[1], 1.0))
        metrics["ssb/injected"].append(total[2])
        if total[2] > 0:
            metrics["ssb/replay_age_mean"].append(total[3] / total[2])
        if not self._behaviour_from_loss:  # pushed already; otherwise after the first pass (above)
            self._log_buffer_metrics(device)

    def _log_buffer_metrics(self, device: torch.device) -> None:
        """Samples held and their host bytes, summed over processes."""
        local = [float(len(self.ssb)), float(stored_bytes(s.payload for s in self.ssb.samples))]
        total = self.accelerator.gather(torch.tensor([local], device=device)).sum(dim=0).tolist()
        self._metrics["train"]["ssb/buffer_size"].append(total[0])
        self._metrics["train"]["ssb/buffer_bytes"].append(total[1])

    def resume_state_files(self) -> list[str]:
        files = super().resume_state_files()
        return [*files, BUFFER_FILE] if self.args.ssb_enabled else files

    def save_resume_state(self, folder: str) -> None:
        super().save_resume_state(folder)
        if self.args.ssb_enabled:
            if self._pending is not None:
                raise RuntimeError(
                    "SSB: a checkpoint inside a generation cycle while behaviour log-probs are pending"
                )
            path = os.path.join(folder, BUFFER_FILE.format(rank=self.accelerator.process_index))
            save_atomic(torch.save, self.ssb.state_dict(), path)

    def load_resume_state(self, folder: str) -> None:
        super().load_resume_state(folder)
        if self.args.ssb_enabled:
            path = os.path.join(folder, BUFFER_FILE.format(rank=self.accelerator.process_index))
            self.ssb.load_state_dict(torch.load(path, weights_only=True))
