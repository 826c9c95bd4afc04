"""Rule rewards plus a calibrated reward-model score, in one function (an option, not R1V2's recipe).

Skywork R1V2 (arXiv 2504.16656) sums rule-based accuracy, the reward-model score and the format
reward without weights in GRPO (`mix: weighted` with all weights 1 does exactly that; it is the
R1V2 recipe). Its "calibrated reward thresholds" against visual hallucination sit elsewhere: on the
reward-model score margin of MPO preference pairs (`preference-pairs`, ``pairs.min_margin``; the
paper compares 7, 10 and 15). This module keeps, as documented options of our own, ways to
calibrate how the RM enters a GRPO reward:

- ``rm_clip``: bound the RM score, so no completion gets an outsized push from the RM alone;
- ``rm_threshold``: the RM only contributes when its (normalised) score reaches the threshold
  (weak RM preferences are noise at 38B-scale rollout counts);
- ``rm_gate="correct"``: the RM only adds to completions the rule reward marks correct (and to
  rows with no gold answer) — a fluent but wrong answer, the kind that describes things not in
  the image, cannot earn RM reward;
- ``rm_gate="unverifiable"``: rules decide verifiable rows, the RM only scores rows without a
  gold answer (the accuracy reward returns None there).

The weighting happens here (TRL gets one function and no ``reward_weights``) because the gates
need the components side by side. Each component and the mix are logged through TRL's
``log_metric`` as ``rewards/<name>/<component>/mean``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

RewardFunc = Callable[..., list[float | None]]
Gate = Literal["none", "correct", "unverifiable"]


@dataclass(frozen=True)
class Calibration:
    """How the reward-model score enters the mix (see the module docstring)."""

    rm_clip_min: float | None = None
    rm_clip_max: float | None = None
    rm_threshold: float | None = None
    rm_gate: Gate = "none"
    gate_component: str = "accuracy"
    correct_threshold: float = 1.0


def calibrate_rm(rm: float, rule: float | None, calibration: Calibration) -> float:
    """The RM score's contribution for one completion, before its weight.

    ``rule`` is the gate component's value (None: the row has no gold answer).
    """
    if calibration.rm_gate == "correct" and rule is not None and rule < calibration.correct_threshold:
        return 0.0
    if calibration.rm_gate == "unverifiable" and rule is not None:
        return 0.0
    if calibration.rm_clip_min is not None:
        rm = max(rm, calibration.rm_clip_min)
    if calibration.rm_clip_max is not None:
        rm = min(rm, calibration.rm_clip_max)
    if calibration.rm_threshold is not None and rm < calibration.rm_threshold:
        return 0.0
    return rm


def _mean(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return sum(present) / len(present) if present else float("nan")


class HybridReward:
    """Weighted sum of rule rewards and a calibrated reward-model score (TRL reward function).

    Args:
        rules: ``(function, weight)`` pairs; a function returning None for a row is skipped there.
        reward_model: the RM reward function, or None for rules only.
        rm_weight: weight of the RM's calibrated contribution.
        calibration: clip / threshold / gate of the RM score.
    """

    def __init__(
        self,
        rules: Sequence[tuple[RewardFunc, float]],
        reward_model: RewardFunc | None = None,
        rm_weight: float = 1.0,
        calibration: Calibration = Calibration(),
        name: str = "hybrid",
    ) -> None:
        self.__name__ = name
        self.rules, self.reward_model, self.rm_weight, self.calibration = (
            list(rules),
            reward_model,
            rm_weight,
            calibration,
        )
        names = [getattr(f, "__name__", type(f).__name__) for f, _ in self.rules]
        if (
            calibration.rm_gate != "none"
            and reward_model is not None
            and calibration.gate_component not in names
        ):
            raise ValueError(
                f"hybrid reward: rm_gate={calibration.rm_gate!r} reads component "
                f"{calibration.gate_component!r}, which is not among the rule rewards {names}; add it to "
                "rewards.reward_funcs or set rewards.rm_gate_component"
            )

    def __call__(
        self,
        completions: Sequence[Any],
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        n = len(completions)
        parts: dict[str, list[float | None]] = {}
        total: list[float | None] = [None] * n
        for func, weight in self.rules:
            name = getattr(func, "__name__", type(func).__name__)
            values = list(func(completions=completions, log_metric=log_metric, **kwargs))
            parts[name] = values
            for i, value in enumerate(values):
                if value is not None and not math.isnan(value):
                    total[i] = (total[i] or 0.0) + weight * value
        if self.reward_model is not None:
            rm_name = getattr(self.reward_model, "__name__", "reward_model")
            rm_scores = self.reward_model(completions=completions, log_metric=log_metric, **kwargs)
            gate = parts.get(self.calibration.gate_component, [None] * n)
            # An item the RM could not score (None, counted in its own failures) gets no RM term.
            effective: list[float | None] = [
                None if s is None else calibrate_rm(float(s), gate[i], self.calibration)
                for i, s in enumerate(rm_scores)
            ]
            for i, value in enumerate(effective):
                if value is not None:
                    total[i] = (total[i] or 0.0) + self.rm_weight * value
            parts[rm_name] = list(rm_scores)
            parts[f"{rm_name}_effective"] = list(effective)
            if log_metric is not None:
                zeroed = sum(
                    1 for s, e in zip(rm_scores, effective, strict=True) if e == 0.0 and s not in (None, 0.0)
                )
                log_metric(f"rewards/{self.__name__}/rm_gated_fraction", zeroed / max(1, n))
        if log_metric is not None:
            for part, values in parts.items():
                log_metric(f"rewards/{self.__name__}/{part}/mean", _mean(values))
        return total
