"""Recipe group `monitor:` — what a training stage measures while it trains.

R1V3 selects RL checkpoints by the entropy of critical reasoning tokens; watching it (and a small
benchmark's accuracy) during training is what lets a user pick `checkpoint-N` without evaluating
every one afterwards. Both are off unless a recipe sets their interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skywork_rl.callbacks.critical_entropy import CriticalEntropyCallback
from skywork_rl.callbacks.entropy import DEFAULT_CRITICAL_WORDS, probe_sampling
from skywork_rl.callbacks.periodic_eval import PeriodicEvalCallback
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.scorers import get_benchmark_scorer


@dataclass
class MonitorArguments:
    """Recipe group `monitor:` — in-training critical-token entropy and periodic eval."""

    critical_entropy_steps: int = field(
        default=0, metadata={"help": "Log critical_entropy/mean every N optimizer steps (0: off)."}
    )
    probe_data: str | None = field(
        default=None,
        metadata={"help": "Probe prompts (any data.train form); default: the stage's train data."},
    )
    probe_size: int = field(default=8, metadata={"help": "How many probe prompts (first N rows)."})
    critical_words: list[str] = field(
        default_factory=lambda: list(DEFAULT_CRITICAL_WORDS),
        metadata={"help": "Words whose generating distribution's entropy is measured."},
    )
    entropy_num_generations: int = field(default=2, metadata={"help": "Rollouts per probe prompt."})
    entropy_max_new_tokens: int = field(default=512, metadata={"help": "Length of each probe rollout."})
    eval_steps: int = field(
        default=0, metadata={"help": "Run the eval set every N optimizer steps (0: off)."}
    )
    eval_benchmark: str | None = field(
        default=None, metadata={"help": "Benchmark scorer for the eval set: mmmu, mathvista, mathverse, ..."}
    )
    eval_file: str | None = field(
        default=None, metadata={"help": "Local benchmark file in its official layout."}
    )
    eval_limit: int = field(default=32, metadata={"help": "Items of the eval set used per evaluation."})
    eval_max_new_tokens: int = field(default=1024, metadata={"help": "Generation length during eval."})

    def __post_init__(self) -> None:
        if self.critical_entropy_steps < 0 or self.eval_steps < 0:
            raise ValueError("monitor.critical_entropy_steps and monitor.eval_steps must be >= 0")
        if self.eval_steps and not self.eval_benchmark:
            raise ValueError(
                "monitor.eval_steps is set but monitor.eval_benchmark is not: name the benchmark scorer"
            )


def attach_monitors(trainer: Any, args: MonitorArguments, train_dataset: Any) -> list[Any]:
    """Add the configured callbacks to `trainer`; returns them (empty when monitoring is off)."""
    callbacks: list[Any] = []
    if args.critical_entropy_steps:
        probe = (
            load_stage_dataset(args.probe_data, key="monitor.probe_data")
            if args.probe_data
            else train_dataset
        )
        rows = [probe[i] for i in range(min(args.probe_size, len(probe)))]
        callbacks.append(
            CriticalEntropyCallback(
                trainer,
                rows,
                every_n_steps=args.critical_entropy_steps,
                words=args.critical_words,
                num_generations=args.entropy_num_generations,
                sampling=probe_sampling(max_new_tokens=args.entropy_max_new_tokens),
            )
        )
    if args.eval_steps:
        items = get_benchmark_scorer(args.eval_benchmark).load_items(args.eval_file, limit=args.eval_limit)
        callbacks.append(
            PeriodicEvalCallback(
                trainer,
                args.eval_benchmark,
                items,
                every_n_steps=args.eval_steps,
                max_new_tokens=args.eval_max_new_tokens,
            )
        )
    for callback in callbacks:
        trainer.add_callback(callback)
    return callbacks
