"""Connector-only fine-tuning: TRL's `SFTTrainer` whose optimizer may hold the connector and nothing else.

R1V3 (arXiv 2507.06167) tunes only the connector (the MLP between vision encoder and LLM) after RL
to re-balance cross-domain skills without touching the reasoning LLM. Freezing is done by
`skywork_rl.families.parts.set_trainable`; transformers' `Trainer.create_optimizer` already passes only
``requires_grad`` parameters to the optimizer. This subclass adds the guarantee on top: after the
optimizer is built it checks, by identity, that every parameter it holds is a connector parameter
and that every connector parameter is in it, and fails loudly otherwise (a stray
``requires_grad=True`` from a plugin or a PEFT wrapper would silently train the LLM). It also
reports what the small optimizer costs, the point of the stage on a 38B model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from skywork_rl.trainers.params import numel_of
from skywork_rl.trainers.sft import SkyworkSFTTrainer

logger = logging.getLogger("skywork_rl")


class ConnectorOnlyError(RuntimeError):
    """The optimizer would update a parameter outside the connector (or miss a connector one)."""


def optimizer_parameters(optimizer: Any) -> list[torch.nn.Parameter]:
    """Every parameter in an optimizer's groups (unwrapping accelerate's `AcceleratedOptimizer`)."""
    inner = getattr(optimizer, "optimizer", optimizer)
    return [p for group in inner.param_groups for p in group["params"]]


def optimizer_state_bytes(optimizer: Any) -> int:
    """Bytes held by the optimizer's state tensors (Adam's moments appear after the first step)."""
    inner = getattr(optimizer, "optimizer", optimizer)
    total = 0
    for state in inner.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                total += value.numel() * value.element_size()
    return total


def check_connector_only(
    model: torch.nn.Module, optimizer: Any, connector_names: Iterable[str]
) -> dict[str, int]:
    """Raise `ConnectorOnlyError` unless the optimizer holds exactly the connector's parameters.

    Returns the parameter counts (``connector/trainable_params``, ``connector/frozen_params``).
    """
    allowed = set(connector_names)
    by_id = {id(p): n for n, p in model.named_parameters()}
    held = {by_id.get(id(p), "<not a model parameter>") for p in optimizer_parameters(optimizer)}
    stray = sorted(held - allowed)
    if stray:
        raise ConnectorOnlyError(
            f"connector stage: the optimizer holds {len(stray)} non-connector parameter(s), e.g. {stray[:5]}; "
            "something re-enabled requires_grad after freezing (check model.part_patterns and plugins)"
        )
    missing = sorted(allowed - held)
    if missing:
        raise ConnectorOnlyError(
            f"connector stage: connector parameter(s) {missing[:5]} are not in the optimizer "
            "(frozen or tied to a frozen tensor); nothing would train them"
        )
    named = dict(model.named_parameters())
    trainable = sum(numel_of(named[n]) for n in held)
    total = sum(numel_of(p) for p in model.parameters())
    return {"connector/trainable_params": trainable, "connector/frozen_params": total - trainable}


class ConnectorOnlyTrainer(SkyworkSFTTrainer):
    """`SkyworkSFTTrainer` that refuses to optimise anything but the connector (see the module doc)."""

    def __init__(self, *args: Any, connector_names: Iterable[str], **kwargs: Any) -> None:
        self.connector_names = tuple(connector_names)
        if not self.connector_names:
            raise ConnectorOnlyError("connector stage: no connector parameters were resolved")
        self.connector_counts: dict[str, int] = {}
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        self.connector_counts = check_connector_only(self.model, optimizer, self.connector_names)
        logger.info(
            "connector stage: optimizer holds %d connector parameters (%d frozen)",
            self.connector_counts["connector/trainable_params"],
            self.connector_counts["connector/frozen_params"],
        )
        return optimizer

    def connector_report(self) -> dict[str, float]:
        """Trainable/frozen parameter counts and optimizer state bytes, for logs and `stage.json`.

        Every process calls it (the byte counts are reduced over processes). The state bytes are
        summed over processes: under ZeRO each holds its partition, so one process's count would be
        a fraction of the state; under DDP each holds a full copy, and the sum is what the job holds.
        ``..._per_process`` is the most any one process holds.
        """
        report = {k: float(v) for k, v in self.connector_counts.items()}
        if self.optimizer is not None:
            local = torch.tensor(float(optimizer_state_bytes(self.optimizer)), device=self.accelerator.device)
            report["connector/optimizer_state_bytes"] = self.accelerator.reduce(local, reduction="sum").item()
            per_process = self.accelerator.gather(local.unsqueeze(0)).max().item()
            report["connector/optimizer_state_bytes_per_process"] = per_process
        return report
