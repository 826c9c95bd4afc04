"""Training callback: a small benchmark eval every N steps, accuracy logged with the training metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback

from skywork_rl.callbacks.logging import log_through_trainer, parameter_sharding, unwrapped_model
from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.generation.transformers_backend import TransformersBackend
from skywork_rl.scorers import get_benchmark_scorer


class PeriodicEvalCallback(TrainerCallback):
    """Generates for ``items`` (the benchmark scorer's, e.g. ``get_benchmark_scorer("mmmu").load_items(
    path, limit=64)``) every ``every_n_steps`` and logs ``eval/<benchmark>/accuracy``.

    Scored by the benchmark's registered scorer (`skywork_rl.scorers`: eval's plugin provides the
    same code as `skywork-rl eval`), so the number during training and the number of the final eval
    mean the same thing. Generation runs on the main process only (a small set),
    so it refuses ZeRO-3 and FSDP (`ensure_supported`): use `skywork-rl eval` on saved checkpoints.
    """

    @classmethod
    def ensure_supported(cls, trainer: Any) -> None:
        """Raise when the trainer shards parameters: the main process alone would run forward passes
        whose weights only exist across all processes (ZeRO-3 hangs waiting for the others to gather;
        FSDP's unwrapped module holds only this rank's shard)."""
        sharding = parameter_sharding(trainer)
        if sharding is not None:
            raise ValueError(
                f"monitor.eval_steps: periodic eval generates on the main process only, which {sharding} "
                "does not allow (the weights are sharded across processes); set monitor.eval_steps: 0 "
                "and run `skywork-rl eval` on the saved checkpoints instead"
            )

    def __init__(
        self,
        trainer: Any,
        benchmark: str,
        items: Sequence[Any],
        *,
        every_n_steps: int = 100,
        max_new_tokens: int = 1024,
        temperature: float = SamplingParams.temperature,
        top_p: float = SamplingParams.top_p,
        batch_size: int = 8,
        seed: int = SamplingParams.seed,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"PeriodicEvalCallback: every_n_steps must be >= 1, got {every_n_steps}")
        if not items:
            raise ValueError(f"PeriodicEvalCallback: no items for benchmark {benchmark!r}")
        self.ensure_supported(trainer)
        self.scorer = get_benchmark_scorer(benchmark)
        self.trainer, self.benchmark, self.items, self.every = trainer, benchmark, list(items), every_n_steps
        self.sampling = SamplingParams(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
        )
        self.batch_size = batch_size
        self._last_step = -1

    def evaluate(self) -> dict[str, float]:
        """Accuracy of the current weights on the items (main process; others get the same numbers)."""
        from accelerate.utils import broadcast_object_list

        accelerator = self.trainer.accelerator
        metrics: list[Any] = [None]
        if accelerator.is_main_process:
            model = unwrapped_model(self.trainer)
            was_training = model.training
            tokenizer = getattr(self.trainer.processing_class, "tokenizer", self.trainer.processing_class)
            padding_side = tokenizer.padding_side  # generation pads left; the training collator may not
            try:
                backend = TransformersBackend(
                    model, self.trainer.processing_class, batch_size=self.batch_size, device=str(model.device)
                )
                texts = backend.generate(
                    [item.row for item in self.items],
                    sampling=self.sampling,
                    num_generations=1,
                    progress=f"eval {self.benchmark}",
                )
            finally:
                model.train(was_training)
                tokenizer.padding_side = padding_side
            scores = self.scorer.score(self.items, [t[0] for t in texts])
            metrics[0] = {f"eval/{self.benchmark}/{key}": value for key, value in scores.items()}
        if accelerator.num_processes > 1:
            broadcast_object_list(metrics)
        return metrics[0]

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self._last_step or state.global_step % self.every != 0:
            return
        self._last_step = state.global_step
        log_through_trainer(self.trainer, self.evaluate())
