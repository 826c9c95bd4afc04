"""NaN and inf rewards are counted, logged and, past a threshold, fail the run naming the function.

TRL's `GRPOTrainer` sums reward functions with `nansum`: a NaN reward counts as absent, so a function
that returns NaN for half its completions gives those completions 0 from it, silently, and a stage
whose only reward is NaN trains on zero advantages. `None` is different: it is TRL's documented "this
function does not apply to this completion" (multi-task rewards) and stays so.

`RewardCheckMixin` wraps each plain (synchronous, non-module) reward function so that it counts the
NaN and inf values it returns, apart from its `None`s; a reward model (`nn.Module`) or an async
function cannot tell `None` from NaN after TRL's conversion, so every NaN of its column counts. Per
generation batch (summed over processes) the trainer logs ``rewards/<name>/nan_fraction``, and

- fails at once when one function returned NaN/inf for every completion of the batch, or when no
  function scored any completion of it (all `None`);
- fails at a logging step when a function's NaN/inf share over the logging window (the batches since
  the last log) is above ``training.reward_nan_max_fraction`` (default 0.1);

both with a `RewardNaNError` naming the function. ``training.reward_nan_as_zero: true`` (opt in) scores
NaN/inf as 0.0 instead: still counted and logged, never fatal.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch
from torch import nn
from trl.trainer.utils import get_callable_name, is_async_callable

from skywork_rl.errors import SkyworkError

NAN_FRACTION_METRIC = "rewards/{name}/nan_fraction"


class RewardNaNError(SkyworkError, RuntimeError):
    """A reward function returned NaN or inf for more completions than the recipe allows."""


class CountedReward:
    """A reward function that counts (and with `as_zero`, zeroes) the NaN/inf values it returns."""

    def __init__(self, func: Any, *, as_zero: bool) -> None:
        self.func = func
        self.as_zero = as_zero
        self.__name__ = get_callable_name(func)  # TRL names metrics and logs by it
        self.nonfinite = 0
        self.scored = 0

    def __call__(self, *args: Any, **kwargs: Any) -> list[float | None]:
        values = list(self.func(*args, **kwargs))
        bad = [i for i, v in enumerate(values) if v is not None and not math.isfinite(float(v))]
        self.nonfinite += len(bad)
        self.scored += len(values)
        if self.as_zero:
            for i in bad:
                values[i] = 0.0
        return values

    def take(self) -> tuple[int, int]:
        """NaN/inf values and values returned since the last call."""
        counts, self.nonfinite, self.scored = (self.nonfinite, self.scored), 0, 0
        return counts

    def __getattr__(self, name: str) -> Any:  # the wrapped function's own attributes (close, metrics)
        if name == "func":
            raise AttributeError(name)
        return getattr(self.func, name)


def _countable(func: Any) -> bool:
    return callable(func) and not isinstance(func, nn.Module) and not is_async_callable(func)


class RewardCheckMixin:
    """For a `GRPOTrainer` subclass whose `args` has `reward_nan_max_fraction` and `reward_nan_as_zero`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.args, "reward_nan_as_zero"):
            raise TypeError(
                f"{type(self).__name__} needs a SkyworkGRPOConfig (for its reward_nan_* options), "
                f"got {type(self.args).__name__}"
            )
        as_zero = bool(self.args.reward_nan_as_zero)
        self.reward_funcs = [
            CountedReward(f, as_zero=as_zero) if _countable(f) else f for f in self.reward_funcs
        ]
        self._nan_window: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def _calculate_rewards(
        self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any
    ) -> Any:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        local = [f.take() if isinstance(f, CountedReward) else (0, 0) for f in self.reward_funcs]
        device = rewards_per_func.device
        counts = self.accelerator.reduce(
            torch.tensor(local, dtype=torch.long, device=device), reduction="sum"
        )
        mode = "train" if self.model.training else "eval"
        for i, (func, name) in enumerate(zip(self.reward_funcs, self.reward_func_names, strict=True)):
            if isinstance(func, CountedReward):
                nonfinite, scored = counts[i].tolist()
            else:  # gathered over processes already; TRL turned its None into NaN, so they count too
                column = rewards_per_func[:, i]
                nonfinite, scored = int((~torch.isfinite(column)).sum()), column.numel()
                if self.args.reward_nan_as_zero:
                    rewards_per_func[:, i] = torch.nan_to_num(column, nan=0.0, posinf=0.0, neginf=0.0)
            self._metrics[mode][NAN_FRACTION_METRIC.format(name=name)].append(nonfinite / max(scored, 1))
            window = self._nan_window[name]
            window[0] += nonfinite
            window[1] += scored
            if not self.args.reward_nan_as_zero and scored and nonfinite == scored:
                raise RewardNaNError(
                    f"reward {name!r} returned NaN or inf for all {scored} completions of the batch at step "
                    f"{self.state.global_step}: every one would get 0 from it (TRL's nansum) and the update no "
                    "signal; fix the function, or set training.reward_nan_as_zero: true to score NaN as 0"
                )
        if rewards_per_func.numel() and torch.isnan(rewards_per_func).all():
            raise RewardNaNError(
                f"no reward function ({', '.join(repr(n) for n in self.reward_func_names)}) scored any of the "
                f"{rewards_per_func.shape[0]} completions of the batch at step {self.state.global_step} (all "
                "returned None, TRL's 'does not apply'): the update would have no signal; make at least one "
                "function apply to these rows"
            )
        return rewards_per_func

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        self._check_nan_window()
        super().log(logs, start_time)

    def _check_nan_window(self) -> None:
        """Fail when a function's NaN/inf share since the last log passes the limit; then start a new window."""
        window, self._nan_window = self._nan_window, defaultdict(lambda: [0, 0])
        limit = self.args.reward_nan_max_fraction
        if self.args.reward_nan_as_zero:
            return
        for name, (nonfinite, scored) in window.items():
            if scored and nonfinite / scored > limit:
                raise RewardNaNError(
                    f"reward {name!r} returned NaN or inf for {nonfinite} of {scored} completions "
                    f"({nonfinite / scored:.0%}) over the logging window ending at step {self.state.global_step}, "
                    f"above training.reward_nan_max_fraction ({limit:g}); those completions get 0 from it "
                    "(TRL's nansum). Fix the function, raise reward_nan_max_fraction, or set "
                    "training.reward_nan_as_zero: true to score NaN as 0"
                )
