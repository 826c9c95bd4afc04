"""Reward registry: recipe names (``accuracy``, ``format``, ...) or ``module:function`` import paths.

A registered entry is a builder ``(args, device, **options) -> reward function`` because some
rewards need recipe options (timeouts, tags, the reward-model path); it is imported when a recipe
first names it. A user reward is named by import path (``my_pkg.rewards:length_penalty``) and used
as is: a plain function in TRL's convention. Either can take options from the recipe
(``rewards.reward_kwargs: {"my_pkg.rewards:length_penalty": {max_len: 512}}``): keyword arguments
bound to the function (or passed to the builder), each checked against its named parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from skywork_rl.plugins import Registry, RegistryError, TargetImportError, UnknownEntryError, load_plugins
from skywork_rl.rewards.config import RewardArguments
from skywork_rl.rewards.hybrid import Calibration, HybridReward

RewardFunc = Callable[..., list[float | None]]
Builder = Callable[..., RewardFunc]

# what TRL's GRPOTrainer (and the rewards' metric logging) pass to every reward function itself
TRAINER_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_metric")


class RewardError(RegistryError, ValueError):
    """A reward a recipe names that cannot be built as asked (import, options)."""


class UnknownRewardError(UnknownEntryError, ValueError):
    """A reward name nobody registered."""


REWARDS = Registry("reward", before_lookup=load_plugins, import_paths=True, unknown_error=UnknownRewardError)


def register_reward(name: str, target: str) -> None:
    """Register ``module:builder`` under `name`; ``builder(args, device, **options)`` returns the
    reward function (`args`: the recipe's `RewardArguments`)."""
    REWARDS.register(name, target)


register_reward("accuracy", "skywork_rl.rewards.accuracy:build_accuracy")
register_reward("format", "skywork_rl.rewards.format:build_format")
register_reward("format_soft", "skywork_rl.rewards.format:build_format_soft")
register_reward("reward_model", "skywork_rl.rewards.reward_model:build_reward_model")
register_reward("verifier", "skywork_rl.rewards.verifier:build_verifier")


def available_rewards() -> list[str]:
    return REWARDS.names()


def _check_options(
    where: str, func: Callable[..., Any], options: Mapping[str, Any], reserved: tuple[str, ...]
) -> None:
    """Every option must be a named keyword parameter of `func` that the caller does not pass itself
    (one swallowed by ``**kwargs`` would be silently ignored, or collide with a dataset column)."""
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
        return
    named = [
        name
        for name, p in parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in reserved
    ]
    for key in options:
        if key in reserved:
            raise RewardError(
                f"{where}: option {key!r} is passed by the trainer itself; rename that parameter"
            )
        if key not in named:
            raise RewardError(
                f"{where}: no parameter {key!r} to take this option; its options are {named or 'none'}"
            )


def get_reward(
    name_or_path: str,
    args: RewardArguments | None = None,
    *,
    device: Any = None,
    kwargs: Mapping[str, Any] | None = None,
) -> RewardFunc:
    """The reward function for a registry name or a ``module:function`` path; `kwargs`: the
    recipe's options for it (``rewards.reward_kwargs[name_or_path]``)."""
    options = dict(kwargs or {})
    where = f"rewards.reward_kwargs[{name_or_path!r}]"
    try:
        registered = name_or_path in REWARDS.targets()
        target = REWARDS.get(name_or_path)
    except TargetImportError as error:
        raise RewardError(f"rewards.reward_funcs: {error}") from error
    if not callable(target):
        raise RewardError(f"rewards.reward_funcs: reward {name_or_path!r} is not callable ({target!r})")
    if not registered:
        if not options:
            return target
        _check_options(where, target, options, TRAINER_KWARGS)
        return functools.update_wrapper(functools.partial(target, **options), target)
    _check_options(where, target, options, ("args", "device"))
    if args is None:
        args = RewardArguments()
    return target(args, device, **options)


def build_reward_funcs(
    args: RewardArguments, *, device: Any = None
) -> tuple[list[RewardFunc], list[float] | None]:
    """Reward functions for ``GRPOTrainer(reward_funcs=...)`` and the ``GRPOConfig.reward_weights``.

    ``mix: weighted`` returns one function per entry and the weights (None: TRL's all-ones).
    ``mix: hybrid`` returns ``[HybridReward]`` and None: the hybrid function weights its parts.
    ``device`` places the reward model (default: the accelerate process's device, at first use).
    """
    weights = list(args.reward_weights) if args.reward_weights is not None else [1.0] * len(args.reward_funcs)
    options = args.reward_kwargs or {}
    funcs = [get_reward(name, args, device=device, kwargs=options.get(name)) for name in args.reward_funcs]
    if args.mix == "weighted":
        return funcs, (list(args.reward_weights) if args.reward_weights is not None else None)

    rules = [
        (f, w) for name, f, w in zip(args.reward_funcs, funcs, weights, strict=True) if name != "reward_model"
    ]
    rm = [
        (f, w) for name, f, w in zip(args.reward_funcs, funcs, weights, strict=True) if name == "reward_model"
    ]
    calibration = Calibration(
        rm_clip_min=args.rm_clip[0] if args.rm_clip else None,
        rm_clip_max=args.rm_clip[1] if args.rm_clip else None,
        rm_threshold=args.rm_threshold,
        rm_gate=args.rm_gate,
        gate_component=args.rm_gate_component,
        correct_threshold=args.correct_threshold,
    )
    hybrid = HybridReward(
        rules,
        reward_model=rm[0][0] if rm else None,
        rm_weight=rm[0][1] if rm else 0.0,
        calibration=calibration,
    )
    return [hybrid], None
