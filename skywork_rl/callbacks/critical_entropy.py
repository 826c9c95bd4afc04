"""Training callback: critical-token entropy (R1V3) on a probe set every N steps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback

from skywork_rl.callbacks.entropy import (
    DEFAULT_CRITICAL_WORDS,
    CriticalEntropy,
    probe_sampling,
    rollout_critical_entropy,
)
from skywork_rl.callbacks.logging import log_through_trainer, parameter_sharding, unwrapped_model
from skywork_rl.generation.protocol import SamplingParams

logger = logging.getLogger("skywork_rl")


class CriticalEntropyCallback(TrainerCallback):
    """Logs ``critical_entropy/mean`` and ``critical_entropy/count`` every ``every_n_steps``.

    Follows TRL's callback pattern (``LogCompletionsCallback``): built with the trainer, probe rows
    split across processes, values gathered, logged on every process (only the main one writes).
    Under ZeRO-3 or FSDP every rank must run the same number of generate calls, so `ensure_supported`
    trims the probe set to a multiple of the number of processes (with a warning).
    """

    @classmethod
    def ensure_supported(cls, trainer: Any, probe_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The probe rows this trainer can run, or a ValueError when it can run none.

        With sharded parameters (ZeRO-3, FSDP) every forward pass is collective: a rank with one
        probe row fewer would stop calling generate while the others wait for it, and training
        hangs. Rather than refuse a probe size such as 8 on 3 GPUs, the rows beyond the largest
        multiple of the number of processes are dropped, with a warning. Without sharding, uneven
        splits are fine and the rows are kept as they are.
        """
        rows = list(probe_rows)
        sharding = parameter_sharding(trainer)
        processes = trainer.accelerator.num_processes
        if sharding is None or len(rows) % processes == 0:
            return rows
        kept = len(rows) - len(rows) % processes
        if kept == 0:
            raise ValueError(
                f"monitor.critical_entropy_steps: under {sharding} every one of the {processes} processes "
                f"needs the same number of probe prompts, but there are only {len(rows)}; set "
                f"monitor.probe_size to a multiple of {processes}"
            )
        logger.warning(
            "monitor.critical_entropy_steps: under %s the %d processes need equal probe shares; using the "
            "first %d of %d probe prompts (set monitor.probe_size to a multiple of %d to keep them all)",
            sharding,
            processes,
            kept,
            len(rows),
            processes,
        )
        return rows[:kept]

    def __init__(
        self,
        trainer: Any,
        probe_rows: Sequence[dict[str, Any]],
        *,
        every_n_steps: int = 50,
        words: Sequence[str] = DEFAULT_CRITICAL_WORDS,
        num_generations: int = 2,
        sampling: SamplingParams | None = None,
    ) -> None:
        """`sampling`: the probe rollouts' (None: `probe_sampling(max_new_tokens=1024)`)."""
        if every_n_steps < 1:
            raise ValueError(f"CriticalEntropyCallback: every_n_steps must be >= 1, got {every_n_steps}")
        self.trainer, self.rows, self.every = (
            trainer,
            self.ensure_supported(trainer, probe_rows),
            every_n_steps,
        )
        self.words, self.num_generations = list(words), num_generations
        self.sampling = sampling or probe_sampling(max_new_tokens=1024)
        self._last_step = -1

    def measure(self) -> CriticalEntropy:
        """Critical-token entropy of the current weights on the probe rows (all processes pooled)."""
        from accelerate.utils import gather_object

        accelerator = self.trainer.accelerator
        model = unwrapped_model(self.trainer)
        processor = self.trainer.processing_class
        tokenizer = getattr(processor, "tokenizer", processor)
        padding_side = tokenizer.padding_side  # generation pads left; the training collator may not
        try:
            with accelerator.split_between_processes(self.rows) as rows:
                result, _ = rollout_critical_entropy(
                    model,
                    processor,
                    rows,
                    sampling=self.sampling,
                    words=self.words,
                    num_generations=self.num_generations,
                    progress="critical-entropy probes" if accelerator.is_main_process else None,
                )
        finally:
            tokenizer.padding_side = padding_side
        pooled = CriticalEntropy()
        for values, words in gather_object([(result.values, result.words)]):
            pooled.extend(CriticalEntropy(values=values, words=words, positions=[0] * len(values)))
        return pooled

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self._last_step or state.global_step % self.every != 0:
            return
        self._last_step = state.global_step
        result = self.measure()
        metrics = {"critical_entropy/count": float(result.count)}
        if result.mean is not None:  # no critical token: log the count only, never a fake 0.0
            metrics["critical_entropy/mean"] = result.mean
        log_through_trainer(self.trainer, metrics)
