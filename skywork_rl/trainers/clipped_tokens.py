"""Which completion tokens still carry a policy gradient after TRL's PPO clipping.

`ssb/effective_ratio` counts informative samples (|advantage| > threshold). A replayed sample is
off-policy: its ratio pi_theta / pi_old has drifted, and where TRL's clipped surrogate takes the
clipped branch the token's policy-gradient term is exactly zero (fresh samples have ratio 1 at the
first forward and are never clipped there), so counting samples overstates the signal an update
carries, the more the older the replays. `effective_token_counts` counts, from the loss's own ratio
and TRL's clip bounds, the loss tokens of informative samples whose term survives.

TRL's surrogate (`GRPOTrainer._compute_loss`, loss types grpo / bnpo / dr_grpo / dapo / luspo) is
``-min(c1 * A, c2 * A)`` with ``c2 = clamp(c, 1 - eps_low, 1 + eps_high)`` and ``c1 = c`` (or
``min(c, delta)`` with two-sided clipping). Its gradient is zero exactly where TRL's
``clip_ratio/region_mean`` counts a token (``c < 1 - eps_low`` with A < 0, ``c > 1 + eps_high`` with
A > 0), plus, with ``delta``, where ``c > delta`` with A < 0. The other loss types never zero a
token's gradient by clipping: cispo clamps a detached weight, sapo is a soft gate, vespo a
sequence weight. Tokens TRL's vLLM importance-sampling mask drops (``weighted_mask``) carry no
gradient and do not count as kept. The KL term (beta > 0), the entropy mask and the off-policy
sequence mask are not clipping and are not counted here.
"""

from __future__ import annotations

import torch

CLIPPED_LOSS_TYPES = frozenset({"grpo", "bnpo", "dr_grpo", "dapo", "luspo"})


def effective_token_counts(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: str,
    importance_sampling_level: str,
    epsilon_low: float,
    epsilon_high: float,
    delta: float | None,
    advantage_threshold: float,
    weighted_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss tokens of informative samples whose policy gradient survives clipping, all loss tokens).

    Arguments are what TRL's loss sees: the loss forward's log-probs, the batch's old log-probs
    (None: TRL uses the loss's own, detached, so the ratio is 1), advantages (B,) or (B, T), the loss
    mask (B, T), and the trainer's clip settings. ``weighted_mask``: the loss tokens the update still
    weighs (`skywork_rl.trainers.grpo_rows.weighted_token_mask`: TRL's importance-sampling mask
    applied); a token it drops never counts as kept. None: every loss token is weighed.
    """
    logps = per_token_logps.detach()
    old = logps if old_per_token_logps is None else old_per_token_logps
    mask = mask.float()  # counts in float32 (bf16 would round them); the ratio in TRL's own dtype
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    informative = adv.abs() > advantage_threshold
    if loss_type in CLIPPED_LOSS_TYPES:
        log_ratio = logps - old
        if importance_sampling_level == "sequence":
            seq_mask = mask.to(log_ratio.dtype)
            log_ratio = ((log_ratio * seq_mask).sum(-1) / seq_mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
        ratio = torch.exp(log_ratio)
        clipped = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + epsilon_high) & (adv > 0))
        if delta is not None:
            clipped = clipped | ((ratio > delta) & (adv < 0))
        carries = informative & ~clipped
    else:
        carries = informative
    weighted = mask if weighted_mask is None else weighted_mask.float()
    return (carries.float() * weighted).sum(), mask.sum()
