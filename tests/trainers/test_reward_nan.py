"""NaN/inf rewards are counted and logged per function; past the limit the run fails naming the function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import cli_env, one_error, run_cli, tiny_grpo_trainer, tiny_stage

from skywork_rl.trainers.reward_checks import RewardNaNError

REPO_ROOT = Path(__file__).resolve().parents[2]


def half_nan(completions: list, **kwargs) -> list[float]:
    return [float("nan") if i % 2 else 1.0 for i in range(len(completions))]


def all_nan(completions: list, **kwargs) -> list[float]:
    return [float("nan")] * len(completions)


def some_inf(completions: list, **kwargs) -> list[float]:
    return [float("inf") if i == 0 else 0.5 for i in range(len(completions))]


def half_none(completions: list, **kwargs) -> list[float | None]:
    """TRL's 'does not apply' for half the completions: not a NaN."""
    return [None if i % 2 else 1.0 for i in range(len(completions))]


def finite(completions: list, **kwargs) -> list[float]:
    return [float(len(c[0]["content"]) % 2) if isinstance(c, list) else 0.0 for c in completions]


def _trainer(model_dir: Path, out: Path, reward_funcs: list, **overrides):
    return tiny_grpo_trainer(
        model_dir, out, reward_funcs, rows=8, **{"max_completion_length": 4, **overrides}
    )


def _logged(trainer, key: str) -> list[float]:
    return [h[key] for h in trainer.state.log_history if key in h]


def test_half_nan_reward_logs_its_nan_fraction_under_a_raised_limit(tiny_internvl, tmp_path):
    trainer = _trainer(tiny_internvl, tmp_path, [half_nan, half_none], reward_nan_max_fraction=0.5)
    trainer.train()
    assert _logged(trainer, "rewards/half_nan/nan_fraction") == [0.5, 0.5]
    assert _logged(trainer, "rewards/half_none/nan_fraction") == [0.0, 0.0]  # None is not NaN


@pytest.mark.slow
def test_half_nan_reward_over_the_default_limit_fails_naming_the_function(tiny_internvl, tmp_path):
    trainer = _trainer(tiny_internvl, tmp_path, [finite, half_nan])
    with pytest.raises(RewardNaNError, match=r"reward 'half_nan' returned NaN or inf for 2 of 4 completions"):
        trainer.train()
    assert trainer.state.global_step == 1  # at the first logging step, not at the end of training


@pytest.mark.slow
def test_inf_counts_like_nan(tiny_internvl, tmp_path):
    trainer = _trainer(tiny_internvl, tmp_path, [some_inf])
    with pytest.raises(RewardNaNError, match=r"reward 'some_inf' .* 1 of 4 completions \(25%\)"):
        trainer.train()


def test_all_nan_batch_fails_at_once_naming_the_function(tiny_internvl, tmp_path):
    trainer = _trainer(tiny_internvl, tmp_path, [finite, all_nan], reward_nan_max_fraction=1.0)
    with pytest.raises(RewardNaNError, match=r"reward 'all_nan' returned NaN or inf for all 4 completions"):
        trainer.train()
    assert trainer.state.global_step == 0  # before the first update


def all_none(completions: list, **kwargs) -> list[None]:
    return [None] * len(completions)


@pytest.mark.slow
def test_batch_no_function_scores_fails_naming_them(tiny_internvl, tmp_path):
    trainer = _trainer(tiny_internvl, tmp_path, [all_none])
    with pytest.raises(
        RewardNaNError, match=r"no reward function \('all_none'\) scored any of the 4 completions"
    ):
        trainer.train()


@pytest.mark.slow
def test_nan_as_zero_trains_and_still_logs_the_fraction(tiny_internvl, tmp_path):
    trainer = _trainer(tiny_internvl, tmp_path, [all_nan, half_nan], reward_nan_as_zero=True)
    trainer.train()
    assert trainer.state.global_step == 2
    assert _logged(trainer, "rewards/all_nan/nan_fraction") == [1.0, 1.0]
    assert _logged(trainer, "rewards/half_nan/nan_fraction") == [0.5, 0.5]
    assert _logged(trainer, "rewards/all_nan/mean") == [0.0, 0.0]  # scored as 0, not absent


def test_limit_outside_zero_one_is_refused(tmp_path):
    from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

    with pytest.raises(ValueError, match="reward_nan_max_fraction must be in"):
        SkyworkGRPOConfig(output_dir=str(tmp_path), reward_nan_max_fraction=1.5, use_cpu=True, report_to=[])


@pytest.mark.slow
def test_grpo_stage_with_a_nan_reward_fails_with_one_error_line(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    (tmp_path / "nan_rewards.py").write_text(
        textwrap.dedent(
            """
            def always_nan(completions, **kwargs):
                return [float("nan")] * len(completions)
            """
        )
    )
    out = tmp_path / "grpo"
    result = run_cli(
        tiny_stage(
            "grpo",
            "grpo.yaml",
            f"--model.name_or_path={tiny_internvl}",
            f"--data.train={synthetic_dataset_dir}",
            f"--training.output_dir={out}",
            "--training.max_steps=2",
            "--training.max_completion_length=4",
            "--training.report_to=[]",
            "--training.per_device_train_batch_size=8",
            "--rewards.reward_funcs=[nan_rewards:always_nan]",
            "--rewards.reward_weights=[1.0]",
        ),
        tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "reward 'always_nan' returned NaN or inf for all" in one_error(result.stderr)
    assert "TypeError" not in result.stderr
