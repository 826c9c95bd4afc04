"""`SSBGRPOTrainer`: TRL's `GRPOTrainer` plus R1V2's Selective Sample Buffer (arXiv 2504.16656).

R1V2 ("Selective Sample Buffer"): as training goes on, more and more GRPO groups get the same reward
for every rollout, their advantages vanish and the update loses its signal. SSB caches samples with
non-zero advantage and re-introduces them, drawn by |advantage|, into later updates.

The one hook is `_generate_and_score_completions`, where TRL has generated, scored and computed
advantages for the whole local generation batch (all `steps_per_generation` micro-batches) and
before `_prepare_inputs` shuffles and splits it. There we (1) push this batch's informative samples
(token ids, masks, image tensors, advantages, log-probs) into this process's buffer and (2) put
buffered samples in the slots of uninformative ones. The batch keeps its size, so TRL's split for
`steps_per_generation`, gradient accumulation and every loss type work unchanged.

Replayed samples keep their stored advantage and old (behaviour-policy) log-probs. The advantage
cannot be recomputed: it is relative to a group whose other members are gone. The stored log-probs
are those of the policy that generated the sample, so TRL's ratio pi_theta / pi_old is the correct
importance weight for an off-policy sample and its clipping bounds the update; recomputing them
under the current policy would claim the sample is on-policy (ratio 1) when it is not. The
reference log-probs (KL term) stay valid as the reference model does not change (`sync_ref_model`,
which changes it, is refused together with SSB by `SkyworkGRPOConfig`). To have old
log-probs for fresh samples too, we compute them the way TRL does when it needs them (TRL skips
them when generation and optimizer steps are aligned, taking ratio 1).

Processes: each holds its own buffer of its own samples (image tensors never cross processes).
Every process gathers (uninformative slots, buffered samples, cap, informative samples) from all,
so all compute the same injection plan, log the same metrics, and make the same collective calls
in the same order whatever their buffers hold: no process can wait on a collective another skips.

Checkpoints hold every process's buffer (`ssb_buffer_rank{r}.pt`, written atomically before
`trainer_state.json`, see `skywork_rl.trainers.resume`), so a resumed run replays what the
uninterrupted one would have.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

from skywork_rl.atomic import save_atomic
from skywork_rl.buffer import SelectiveSampleBuffer
from skywork_rl.trainers.grpo_resume import GRPOResumeMixin
from skywork_rl.trainers.grpo_rows import (
    collate_rows,
    informative_samples,
    loss_mask,
    rows_to,
    sample_fields,
    split_rows,
)
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

BUFFER_FILE = "ssb_buffer_rank{rank}.pt"
# Forward kwargs TRL's `_compute_loss` passes for images; the same ones feed our old-log-prob pass.
_FORWARD_FIELDS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


class SSBGRPOTrainer(GRPOResumeMixin, GRPOTrainer):
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
        uninformative_slots = (~informative).nonzero().flatten().tolist()
        # Buffered rows always carry behaviour log-probs, so the kind counts that field in.
        kind = tuple(sorted({*sample_fields(output), "old_per_token_logps"}))

        self.ssb.evict_stale(step)
        local = torch.tensor(
            [
                len(uninformative_slots),
                self.ssb.count(kind),
                int(self.args.ssb_max_fill_ratio * advantages.numel()),
                int(informative.sum()),
            ],
            device=device,
        )
        plan = self.accelerator.gather(local.unsqueeze(0)).view(-1, 4)
        injections = plan[:, :3].min(dim=1).values  # per process: min(slots, samples held, cap)
        n_inject = int(injections[self.accelerator.process_index])

        # Decided from the gathered plan, so all processes run the extra forward together (ZeRO-3 / FSDP
        # shard parameters and need every process in every forward).
        if bool(injections.sum() > 0 or plan[:, 3].sum() > 0):
            if "old_per_token_logps" not in output:
                output["old_per_token_logps"] = self._behaviour_logps(output)
            split = split_rows(output)
            drawn = self.ssb.sample(n_inject, step=step, kind=kind)
            # Push after drawing so that a batch never replays its own samples.
            fresh = informative.nonzero().flatten().tolist()
            self.ssb.push(
                rows_to([split.rows[i] for i in fresh], "cpu"),
                advantages[fresh].tolist(),
                step=step,
                kind=kind,
            )
            if drawn:
                rows = list(split.rows)
                for slot, sample in zip(uninformative_slots, drawn, strict=False):
                    rows[slot] = sample.payload
                output = collate_rows(
                    rows,
                    split,
                    pad_token_id=self._tokenizer.pad_token_id,
                    pad_to_multiple_of=self.pad_to_multiple_of,
                    device=device,
                )
        # dapo / cispo / vespo normalise by the loss tokens of the whole generation batch on all processes.
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask(output).sum()).sum()
        self._log_ssb_metrics(output, n_inject, device)
        return output

    @torch.no_grad()
    def _behaviour_logps(self, output: dict[str, Any]) -> torch.Tensor:
        """Per-token log-probs of the generating policy, computed exactly as TRL computes old log-probs."""
        input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        with disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model,
                input_ids,
                attention_mask,
                output["completion_ids"].size(1),
                batch_size=self.args.per_device_train_batch_size,
                **{key: output.get(key) for key in _FORWARD_FIELDS},
            )
        return logps

    def _log_ssb_metrics(self, output: dict[str, Any], n_inject: int, device: torch.device) -> None:
        effective = informative_samples(output, self.args.ssb_advantage_threshold)
        local = torch.tensor(
            [float(effective.sum()), float(effective.numel()), float(n_inject), float(len(self.ssb))],
            device=device,
        )
        total = self.accelerator.gather(local.unsqueeze(0)).view(-1, 4).sum(dim=0).tolist()
        metrics = self._metrics["train"]
        metrics["ssb/effective_ratio"].append(total[0] / max(total[1], 1.0))
        metrics["ssb/injected"].append(total[2])
        metrics["ssb/buffer_size"].append(total[3])

    def resume_state_files(self) -> list[str]:
        files = super().resume_state_files()
        return [*files, BUFFER_FILE] if self.args.ssb_enabled else files

    def save_resume_state(self, folder: str) -> None:
        super().save_resume_state(folder)
        if self.args.ssb_enabled:
            path = os.path.join(folder, BUFFER_FILE.format(rank=self.accelerator.process_index))
            save_atomic(torch.save, self.ssb.state_dict(), path)

    def load_resume_state(self, folder: str) -> None:
        super().load_resume_state(folder)
        if self.args.ssb_enabled:
            path = os.path.join(folder, BUFFER_FILE.format(rank=self.accelerator.process_index))
            self.ssb.load_state_dict(torch.load(path, weights_only=True))
