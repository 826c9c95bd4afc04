"""Mixed Preference Optimization (R1V2, arXiv 2504.16656, MPO section) on TRL's `DPOTrainer`, logging each loss term.

MPO's objective is a weighted sum of a preference loss (DPO's sigmoid), a quality loss (BCO's
pairwise form) and a generation loss (SFT on the chosen response); TRL computes exactly this
when `DPOConfig.loss_type` is a list with `loss_weights`. TRL logs only the combined loss, and
the terms move differently (the SFT term keeps falling while the preference terms saturate), so
this subclass adds one metric per term, ``mpo/loss_<type>``.

It does so without a second forward pass: forward hooks keep the per-token log-probabilities the
policy and reference forwards already produced inside `DPOTrainer._compute_loss`, and each term is
re-evaluated from them under `torch.no_grad()` with TRL's formula. The re-evaluation covers the
MPO terms and plain DPO variants (``sigmoid``, ``bco_pair``, ``sft``, ``hinge``) with TRL's
defaults for ``f_divergence_type`` / ``ld_alpha`` / ``use_weighting``; any other setting still
trains exactly as TRL does, it only skips the per-term metrics (with one warning).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from trl import DPOTrainer

from skywork_rl.trainers.family_inputs import FamilyCollatorMixin
from skywork_rl.trainers.resume import ExactResumeMixin
from skywork_rl.trainers.vision_batches import VisionBatchesInStepMixin

logger = logging.getLogger("skywork_rl")

LOGGED_TERMS = ("sigmoid", "bco_pair", "sft", "hinge")


class MPOTrainer(VisionBatchesInStepMixin, FamilyCollatorMixin, ExactResumeMixin, DPOTrainer):
    """`DPOTrainer` with multi-loss MPO and a metric per loss term (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._captured: list[tuple[str, torch.Tensor]] = []
        self._terms_supported = self._check_terms_supported()
        self.model.register_forward_hook(self._capture_hook("policy"))
        if self.ref_model is not None:
            self.accelerator.unwrap_model(self.ref_model).register_forward_hook(self._capture_hook("ref"))

    def _check_terms_supported(self) -> bool:
        reasons = []
        if self.f_divergence_type != "reverse_kl":
            reasons.append(f"f_divergence_type={self.f_divergence_type!r}")
        if self.ld_alpha is not None:
            reasons.append(f"ld_alpha={self.ld_alpha}")
        if self.use_weighting:
            reasons.append("use_weighting=True")
        unsupported = [t for t in self.loss_types if t not in LOGGED_TERMS]
        if unsupported:
            reasons.append(f"loss_type {unsupported}")
        if reasons:
            logger.warning(
                "MPO: per-term loss metrics are off for %s; the combined loss is unchanged", reasons
            )
        return not reasons

    def _capture_hook(self, role: str) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            log_probs = getattr(output, "log_probs", None)
            if log_probs is not None:
                self._captured.append((role, log_probs.detach()))

        return hook

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        self._captured.clear()
        result = super()._compute_loss(model, inputs, return_outputs)
        if self._terms_supported:
            mode = "train" if self.model.training else "eval"
            for name, value in self.loss_terms(inputs).items():
                gathered = self.accelerator.gather_for_metrics(value.reshape(1))
                self._metrics[mode][f"mpo/loss_{name}"].append(gathered.mean().item())
        self._captured.clear()
        return result

    @torch.no_grad()
    def loss_terms(self, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Each configured term's (unweighted) batch loss, from the log-probs of the last forward passes."""
        policy = [lp for role, lp in self._captured if role == "policy"]
        ref = [lp for role, lp in self._captured if role == "ref"]
        if not policy:
            raise RuntimeError("MPO: the policy forward pass was not captured (was the model replaced?)")
        if not ref and len(policy) > 1:  # PEFT: the reference is the same module with adapters off
            ref = policy[1:]
        completion_mask = inputs["completion_mask"]
        shift_mask = completion_mask[..., 1:]
        seq_len = shift_mask.size(1)
        per_token = policy[0][:, -seq_len:]
        chosen_logps, rejected_logps = per_token.sum(dim=1).chunk(2, dim=0)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            if not ref:
                raise RuntimeError("MPO: the reference forward pass was not captured")
            ref_chosen, ref_rejected = ref[0][:, -seq_len:].sum(dim=1).chunk(2, dim=0)
        chosen_lr = chosen_logps - ref_chosen
        rejected_lr = rejected_logps - ref_rejected
        delta = chosen_lr - rejected_lr
        terms: dict[str, torch.Tensor] = {}
        for loss_type in self.loss_types:
            if loss_type == "sigmoid":
                terms[loss_type] = (-F.logsigmoid(self.beta * delta)).mean()
            elif loss_type == "bco_pair":
                bco = -F.logsigmoid(self.beta * chosen_lr) - F.logsigmoid(-self.beta * rejected_lr)
                terms[loss_type] = bco.mean()
            elif loss_type == "hinge":
                terms[loss_type] = torch.relu(1 - self.beta * delta).mean()
            elif loss_type == "sft":
                chosen_mask, _ = shift_mask.chunk(2, dim=0)
                chosen_tokens, _ = per_token.chunk(2, dim=0)
                terms[loss_type] = -chosen_tokens[chosen_mask.bool()].mean()
        return terms
