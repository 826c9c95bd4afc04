"""Hybrid mix and RM calibration logic; registry names, import paths and the recipe builder."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from skywork_rl.rewards.config import RewardArguments
from skywork_rl.rewards.hybrid import Calibration, HybridReward, calibrate_rm
from skywork_rl.rewards.registry import available_rewards, build_reward_funcs, get_reward


def _fixed(name: str, values: list[float | None]):
    def reward(completions, **kwargs):
        return list(values)

    reward.__name__ = name
    return reward


@pytest.mark.parametrize(
    ("rm", "rule", "calibration", "expected"),
    [
        (2.0, 1.0, Calibration(), 2.0),
        (2.0, 1.0, Calibration(rm_clip_max=0.5), 0.5),
        (-3.0, 1.0, Calibration(rm_clip_min=-1.0), -1.0),
        (0.2, 1.0, Calibration(rm_threshold=0.5), 0.0),
        (0.7, 1.0, Calibration(rm_threshold=0.5), 0.7),
        (0.9, 0.0, Calibration(rm_gate="correct"), 0.0),  # wrong answer: no RM credit
        (0.9, 1.0, Calibration(rm_gate="correct"), 0.9),
        (0.9, None, Calibration(rm_gate="correct"), 0.9),  # no gold: RM decides
        (0.9, 1.0, Calibration(rm_gate="unverifiable"), 0.0),
        (0.9, None, Calibration(rm_gate="unverifiable"), 0.9),
        (0.9, 0.5, Calibration(rm_gate="correct", correct_threshold=0.5), 0.9),
        (5.0, 1.0, Calibration(rm_clip_max=1.0, rm_threshold=1.5), 0.0),  # threshold after clipping
    ],
)
def test_rm_calibration_clip_threshold_and_gate(
    rm: float, rule: float | None, calibration: Calibration, expected: float
) -> None:
    assert calibrate_rm(rm, rule, calibration) == expected


def test_hybrid_sums_weighted_rules_and_gated_rm_and_logs_each_part() -> None:
    accuracy = _fixed("accuracy", [1.0, 0.0, None])
    fmt = _fixed("format", [1.0, 1.0, 0.0])
    rm = _fixed("reward_model", [0.8, 0.9, 0.6])
    metrics: dict[str, float] = {}
    hybrid = HybridReward(
        [(accuracy, 0.9), (fmt, 0.1)],
        reward_model=rm,
        rm_weight=0.5,
        calibration=Calibration(rm_gate="correct"),
    )
    totals = hybrid(completions=["a", "b", "c"], log_metric=metrics.__setitem__)
    assert totals == pytest.approx([0.9 + 0.1 + 0.4, 0.1, 0.0 + 0.3])
    assert metrics["rewards/hybrid/accuracy/mean"] == pytest.approx(0.5)
    assert metrics["rewards/hybrid/reward_model/mean"] == pytest.approx((0.8 + 0.9 + 0.6) / 3)
    assert metrics["rewards/hybrid/reward_model_effective/mean"] == pytest.approx((0.8 + 0.0 + 0.6) / 3)
    assert metrics["rewards/hybrid/rm_gated_fraction"] == pytest.approx(1 / 3)


def test_hybrid_returns_none_where_no_part_applies() -> None:
    hybrid = HybridReward([(_fixed("accuracy", [None, 1.0]), 1.0)])
    assert hybrid(completions=["a", "b"]) == [None, 1.0]


def test_hybrid_gate_on_a_missing_component_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not among the rule rewards"):
        HybridReward(
            [(_fixed("format", [1.0]), 1.0)],
            reward_model=_fixed("rm", [1.0]),
            calibration=Calibration(rm_gate="correct"),
        )


def test_registry_builds_named_rewards_with_trl_names() -> None:
    assert {"accuracy", "format", "format_soft", "reward_model"} <= set(available_rewards())
    funcs, weights = build_reward_funcs(
        RewardArguments(reward_funcs=["accuracy", "format_soft"], reward_weights=[0.9, 0.1])
    )
    assert [f.__name__ for f in funcs] == ["accuracy", "format_soft"]
    assert weights == [0.9, 0.1]


def test_user_reward_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_rewards.py").write_text(
        textwrap.dedent(
            """
            def brevity(completions, **kwargs):
                return [1.0 if len(c) < 10 else 0.0 for c in completions]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    funcs, weights = build_reward_funcs(
        RewardArguments(reward_funcs=["format", "my_rewards:brevity"], reward_weights=[1.0, 2.0])
    )
    assert funcs[1].__name__ == "brevity"
    assert funcs[1](completions=["short", "a" * 20]) == [1.0, 0.0]
    sys.modules.pop("my_rewards", None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "unknown reward 'nope'"),
        ("no_such_module_xyz:f", "cannot import module"),
        ("math:no_such_function", "has no attribute .no_such_function."),
    ],
)
def test_unknown_rewards_are_clear_errors(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_reward(name)


def test_reward_model_without_path_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="rewards.reward_model is not set"):
        build_reward_funcs(RewardArguments(reward_funcs=["reward_model"]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward_weights": [1.0]}, "one weight per reward"),
        ({"rm_threshold": 0.5}, "only apply with rewards.mix: hybrid"),
        ({"mix": "hybrid", "rm_clip": [1.0, 0.0]}, "min <= max"),
    ],
)
def test_bad_reward_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RewardArguments(**kwargs)


def test_hybrid_mix_builds_one_function_and_no_trl_weights() -> None:
    funcs, weights = build_reward_funcs(RewardArguments(mix="hybrid", reward_weights=[0.9, 0.1]))
    assert [f.__name__ for f in funcs] == ["hybrid"] and weights is None
    totals = funcs[0](
        completions=["<think>r</think>\\boxed{2}", "<think>r</think>\\boxed{3}"], solution=["2", "2"]
    )
    assert totals == pytest.approx([1.0, 0.1])
    assert not any(math.isnan(t) for t in totals)


def test_hybrid_gives_no_rm_term_to_an_item_the_rm_could_not_score() -> None:
    metrics: dict[str, float] = {}
    hybrid = HybridReward(
        [(_fixed("accuracy", [1.0, 1.0]), 1.0)],
        reward_model=_fixed("reward_model", [0.5, None]),
        rm_weight=2.0,
    )
    assert hybrid(completions=["a", "b"], log_metric=metrics.__setitem__) == [2.0, 1.0]
    assert metrics["rewards/hybrid/reward_model/mean"] == 0.5  # over the scored items only


_OPTIONED = """
def longer_than(completions, min_len=3, bonus=1.0, **kwargs):
    return [bonus if len(c) > min_len else 0.0 for c in completions]
"""


def test_a_user_reward_is_called_with_its_recipe_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "optioned_rewards.py").write_text(_OPTIONED)
    monkeypatch.syspath_prepend(str(tmp_path))
    funcs, _ = build_reward_funcs(
        RewardArguments(
            reward_funcs=["format", "optioned_rewards:longer_than"],
            reward_kwargs={"optioned_rewards:longer_than": {"min_len": 5, "bonus": 2.0}},
        )
    )
    assert funcs[1].__name__ == "longer_than"  # TRL logs rewards/<__name__>/mean
    assert funcs[1](prompts=["p", "p"], completions=["abcd", "abcdef"]) == [0.0, 2.0]
    plain, _ = build_reward_funcs(RewardArguments(reward_funcs=["optioned_rewards:longer_than"]))
    assert plain[0](completions=["abcd"]) == [1.0]  # without options: the function's defaults
    sys.modules.pop("optioned_rewards", None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"min_length": 5},
            r"reward_kwargs\['optioned_rewards:longer_than'\]: no parameter 'min_length'.*min_len",
        ),
        (
            {"completions": []},
            r"reward_kwargs\['optioned_rewards:longer_than'\]: option 'completions' is passed",
        ),
    ],
)
def test_a_bad_reward_option_names_the_reward_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], message: str
) -> None:
    (tmp_path / "optioned_rewards.py").write_text(_OPTIONED)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = RewardArguments(
        reward_funcs=["optioned_rewards:longer_than"], reward_kwargs={"optioned_rewards:longer_than": options}
    )
    with pytest.raises(ValueError, match=message):
        build_reward_funcs(args)
    with pytest.raises(ValueError, match=r"reward_kwargs\['accuracy'\]: no parameter 'strictness'"):
        build_reward_funcs(
            RewardArguments(reward_funcs=["accuracy"], reward_kwargs={"accuracy": {"strictness": 1}})
        )
    sys.modules.pop("optioned_rewards", None)


def test_reward_kwargs_for_a_reward_not_in_reward_funcs_is_refused() -> None:
    with pytest.raises(ValueError, match=r"reward_kwargs names \['mine:f'\], which rewards.reward_funcs"):
        RewardArguments(reward_funcs=["accuracy"], reward_kwargs={"mine:f": {"x": 1}})
