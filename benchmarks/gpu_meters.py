"""Meters of the GPU benchmark: step and optimizer time, named trainer phases, FLOPs per step.

All are `transformers.TrainerCallback`s or wrap methods on a trainer instance; TRL's code runs
unchanged. Times are taken after `torch.cuda.synchronize()` so queued kernels count where they run.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from gpu_flops import FlopCounter, mfu
from transformers import TrainerCallback


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepMeter(TrainerCallback):
    """Wall time of each optimizer step (and of its optimizer update) and the cumulative token count
    logged after it."""

    def __init__(self) -> None:
        self.step_seconds: list[float] = []
        self.optimizer_seconds: list[float] = []
        self.tokens: list[float] = []
        self._t0 = self._opt0 = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        self._t0 = time.perf_counter()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        self._opt0 = time.perf_counter()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        self.optimizer_seconds.append(time.perf_counter() - self._opt0)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        self.step_seconds.append(time.perf_counter() - self._t0)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and "num_tokens" in logs:
            self.tokens.append(float(logs["num_tokens"]))


class PhaseTimer(TrainerCallback):
    """Seconds per step in named trainer methods, and the FLOP counter's phase while they run.

    Wraps the methods on the trainer *instance* (`trainer._generate = timed(trainer._generate)`), so
    TRL's code runs unchanged and calls the wrapper through `self`. `phase_of` names the FLOP phase
    a method's forwards belong to.
    """

    def __init__(self, trainer: Any, methods: dict[str, str], counter: FlopCounter, phase_of: dict[str, str]):
        self.seconds: dict[str, list[float]] = {name: [] for name in methods}
        self._current = dict.fromkeys(methods, 0.0)
        self.counter = counter
        for name, attribute in methods.items():
            setattr(trainer, attribute, self._timed(name, getattr(trainer, attribute), phase_of.get(name)))

    def _timed(self, name: str, method: Any, phase: str | None) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            previous = self.counter.phase
            if phase is not None:
                self.counter.phase = phase
            _sync()
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                _sync()
                self._current[name] += time.perf_counter() - start
                self.counter.phase = previous

        return timed

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for name in self.seconds:
            self.seconds[name].append(self._current[name])
            self._current[name] = 0.0


class FlopMeter(TrainerCallback):
    """The counter's FLOPs (per phase and part) and image tiles of each optimizer step."""

    def __init__(self, counter: FlopCounter) -> None:
        self.counter = counter
        self.steps: list[tuple[dict[str, dict[str, float]], dict[str, int]]] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.steps.append(self.counter.take())


def summarize(meter: StepMeter, warmup: int) -> dict[str, float]:
    """Throughput over the timed steps only (the first `warmup` steps compile, allocate and warm caches)."""
    timed = meter.step_seconds[warmup:]
    if not timed or len(meter.tokens) < len(meter.step_seconds):
        raise RuntimeError(
            f"expected one timing and one num_tokens log per step, got {len(meter.step_seconds)} timings, "
            f"{len(meter.tokens)} token logs (logging_steps must be 1)"
        )
    start_tokens = meter.tokens[warmup - 1] if warmup else 0.0
    tokens = meter.tokens[len(meter.step_seconds) - 1] - start_tokens
    seconds = sum(timed)
    return {
        "timed_steps": len(timed),
        "seconds_per_step": seconds / len(timed),
        "tokens_per_step": tokens / len(timed),
        "tokens_per_second": tokens / seconds,
    }


def phase_report(
    seconds: dict[str, list[float]], flops: FlopMeter, warmup: int, peak: float | None
) -> dict[str, Any]:
    """Per phase, means over the timed steps: seconds and, where its FLOPs are counted, TFLOPs (by
    part: vision, connector, llm) and MFU. `seconds` holds `step`, and for GRPO `rollout`, whose
    complement in the step is `train`."""
    mean = {name: sum(values[warmup:]) / len(values[warmup:]) for name, values in seconds.items()}
    counted: dict[str, tuple[str, ...]] = {"step": ("rollout", "train")}
    if "rollout" in mean:
        mean["train"] = mean["step"] - mean["rollout"]
        counted.update(rollout=("rollout",), train=("train",))
    steps = flops.steps[warmup:]
    report: dict[str, Any] = {}
    for name, secs in mean.items():
        report[name] = {"seconds_per_step": secs}
        if name not in counted:
            continue
        by_part: dict[str, float] = {}
        for step_flops, _ in steps:
            for phase in counted[name]:
                for part, value in step_flops.get(phase, {}).items():
                    by_part[part] = by_part.get(part, 0.0) + value / len(steps)
        total = sum(by_part.values())
        report[name].update(
            tflops_per_step=total / 1e12,
            tflops_by_part={part: value / 1e12 for part, value in sorted(by_part.items())},
            mfu=mfu(total, secs, peak),
        )
    report["image_tiles_per_step"] = sum(sum(tiles.values()) for _, tiles in steps) / max(len(steps), 1)
    return report
