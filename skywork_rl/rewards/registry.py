"""Reward registry: recipe names (``accuracy``, ``format``, ...) or ``module:function`` import paths.

A registered entry is a builder ``(args, device) -> reward function`` because some rewards need
recipe options (timeouts, tags, the reward-model path). A user reward is named by import path
(``my_pkg.rewards:length_penalty``) and used as is: a plain function in TRL's convention.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from skywork_rl.rewards.accuracy import AccuracyReward
from skywork_rl.rewards.config import RewardArguments
from skywork_rl.rewards.format import FormatReward, FormatSpec
from skywork_rl.rewards.hybrid import Calibration, HybridReward
from skywork_rl.rewards.verifier import VerifierReward

RewardFunc = Callable[..., list[float | None]]
Builder = Callable[["RewardArguments", Any], RewardFunc]

_BUILDERS: dict[str, Builder] = {}


def register_reward(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder(args, device) -> reward function`` under ``name``."""

    def decorator(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"reward {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorator


def available_rewards() -> list[str]:
    return sorted(_BUILDERS)


def _import_path(path: str) -> RewardFunc:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"reward {path!r}: cannot import module {module_name!r} ({error})") from error
    func = getattr(module, attribute, None)
    if func is None or not callable(func):
        raise ValueError(f"reward {path!r}: module {module_name!r} has no callable {attribute!r}")
    return func


def get_reward(name_or_path: str, args: RewardArguments | None = None, *, device: Any = None) -> RewardFunc:
    """The reward function for a registry name or a ``module:function`` path."""
    if ":" in name_or_path:
        return _import_path(name_or_path)
    builder = _BUILDERS.get(name_or_path)
    if builder is None:
        raise ValueError(
            f"rewards.reward_funcs: unknown reward {name_or_path!r}; choose from {available_rewards()} "
            "or give an import path 'package.module:function'"
        )
    if args is None:
        args = RewardArguments()
    return builder(args, device)


@register_reward("accuracy")
def _accuracy(args: RewardArguments, device: Any) -> RewardFunc:
    # Strict extraction: a training reward that also searched the reasoning, or took the last
    # number anywhere, would pay a policy for listing candidates.
    return AccuracyReward(
        timeout_s=args.timeout_s,
        num_workers=args.num_workers,
        strict=True,
        batch_budget_s=args.batch_budget_s,
    )


def _format_spec(args: RewardArguments) -> Any:
    answer_tags = args.format_answer_tags or [None, None]
    return FormatSpec(
        think_open=args.format_think_tags[0],
        think_close=args.format_think_tags[1],
        answer_open=answer_tags[0],
        answer_close=answer_tags[1],
        require_boxed=args.format_require_boxed,
        open_in_prompt=args.format_open_in_prompt,
    )


@register_reward("format")
def _format(args: RewardArguments, device: Any) -> RewardFunc:
    return FormatReward(name="format", spec=_format_spec(args))


@register_reward("format_soft")
def _format_soft(args: RewardArguments, device: Any) -> RewardFunc:
    return FormatReward(name="format_soft", spec=_format_spec(args), soft=True)


@register_reward("reward_model")
def _reward_model(args: RewardArguments, device: Any) -> RewardFunc:
    from skywork_rl.rewards.reward_model import RewardModelReward  # defers torch

    if not args.reward_model:
        raise ValueError(
            "rewards.reward_funcs names 'reward_model' but rewards.reward_model is not set; give the "
            "reward model's name or path"
        )
    return RewardModelReward(
        args.reward_model,
        kind=args.reward_model_kind,
        device=device,
        batch_size=args.reward_model_batch_size,
        max_length=args.reward_model_max_length,
        normalize=args.reward_model_normalize,
        dtype=args.reward_model_dtype,
        trust_remote_code=args.reward_model_trust_remote_code,
        allow_random_head=args.reward_model_allow_random_head,
    )


@register_reward("verifier")
def _verifier(args: RewardArguments, device: Any) -> RewardFunc:
    if not args.verifier_model:
        raise ValueError(
            "rewards.reward_funcs names 'verifier' but rewards.verifier_model is not set; give the judge "
            "model's name or path (any causal LM or VLM)"
        )
    # The rule side is the accuracy reward's, with the same strict extraction and limits.
    return VerifierReward(
        args.verifier_model,
        backend=args.verifier_backend,
        backend_kwargs=args.verifier_backend_kwargs,
        trust_remote_code=args.verifier_trust_remote_code,
        prompt=args.verifier_prompt,
        max_new_tokens=args.verifier_max_new_tokens,
        budget_s=args.verifier_budget_s,
        cache_size=args.verifier_cache_size,
        timeout_s=args.timeout_s,
        batch_budget_s=args.batch_budget_s,
        num_workers=args.num_workers,
    )


def build_reward_funcs(
    args: RewardArguments, *, device: Any = None
) -> tuple[list[RewardFunc], list[float] | None]:
    """Reward functions for ``GRPOTrainer(reward_funcs=...)`` and the ``GRPOConfig.reward_weights``.

    ``mix: weighted`` returns one function per entry and the weights (None: TRL's all-ones).
    ``mix: hybrid`` returns ``[HybridReward]`` and None: the hybrid function weights its parts.
    ``device`` places the reward model (default: the accelerate process's device, at first use).
    """
    weights = list(args.reward_weights) if args.reward_weights is not None else [1.0] * len(args.reward_funcs)
    funcs = [get_reward(name, args, device=device) for name in args.reward_funcs]
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
