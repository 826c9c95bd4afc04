"""The GRPO stage end to end on the tiny InternVL: recipe parse, hybrid rewards, SSB metrics, outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from skywork_rl.stages.base import COMPLETE_MARKER, STAGE_JSON, RecipeError, parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPO_ROOT / "recipes" / "tiny" / "grpo.yaml"


def _argv(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(TINY_RECIPE),
        f"--model.name_or_path={model}",
        f"--data.train={data}",
        f"--training.output_dir={out}",
        "--training.max_steps=2",
        "--training.max_completion_length=16",
        "--training.report_to=[]",
        *extra,
    ]


def test_grpo_is_registered():
    assert get_stage_class("grpo").name == "grpo"


def test_tiny_recipe_parses_with_ssb_options(tmp_path):
    stage_class = get_stage_class("grpo")
    config = parse_stage_config(stage_class, _argv(Path("m"), Path("d"), tmp_path), source=str(TINY_RECIPE))
    assert config.training.ssb_enabled and config.training.ssb_max_age == 8
    assert config.training.loss_type == "dapo" and config.training.bf16 is False


def test_unknown_ssb_key_names_the_recipe(tmp_path):
    stage_class = get_stage_class("grpo")
    with pytest.raises(RecipeError, match="grpo.yaml"):
        parse_stage_config(
            stage_class,
            _argv(Path("m"), Path("d"), tmp_path, "--training.ssb_capacityy=3"),
            source=str(TINY_RECIPE),
        )


@pytest.mark.slow
def test_grpo_stage_trains_and_reports_ssb_metrics(tiny_internvl, synthetic_dataset_dir, tmp_path):
    stage_class = get_stage_class("grpo")
    out = tmp_path / "grpo"
    config = parse_stage_config(stage_class, _argv(tiny_internvl, synthetic_dataset_dir, out), source="test")
    metrics = run_stage(stage_class(config))

    assert (out / COMPLETE_MARKER).exists() and (out / "config.json").exists()
    record = json.loads((out / STAGE_JSON).read_text())
    assert record["status"] == "complete" and record["stage"] == "grpo"
    assert metrics["global_step"] == 2
    for key in (
        "final_reward",
        "final_frac_reward_zero_std",
        "final_ssb/effective_ratio",
        "final_ssb/buffer_size",
    ):
        assert key in metrics, key
    assert 0.0 <= metrics["final_ssb/effective_ratio"] <= 1.0


INFORMATIVE_IDS: set[str] = set()  # set by the test that uses the reward below


def informative_for_chosen_rows(completions: list, id: list, **kwargs) -> list[float]:
    """Reward that varies inside the groups of the rows in `INFORMATIVE_IDS`, constant elsewhere."""
    return [float(i % 2) if row_id in INFORMATIVE_IDS else 1.0 for i, row_id in enumerate(id)]


@pytest.mark.slow
def test_prompt_pool_holds_the_informative_prompts_with_their_counts_across_a_resume(
    tiny_internvl, synthetic_dataset_dir, tmp_path, monkeypatch
):
    import datasets
    from stages.test_kill_and_resume import Killed, killed_after

    from skywork_rl.trainers.prompt_pool import POOL_ROW_COLUMN

    rows = datasets.load_from_disk(str(synthetic_dataset_dir)).select(range(4))
    chosen = {rows[0]["id"], rows[2]["id"]}
    monkeypatch.setattr(sys.modules[__name__], "INFORMATIVE_IDS", chosen)
    stage_class = get_stage_class("grpo")
    out = tmp_path / "grpo"
    # 4 rows, 2 prompts x 4 rollouts per step: every row is generated once per epoch, twice in 4 steps.
    argv = [
        *_argv(tiny_internvl, synthetic_dataset_dir, out),
        "--training.max_steps=4",
        "--training.per_device_train_batch_size=8",
        "--training.num_generations=4",
        "--training.max_completion_length=8",
        "--training.save_strategy=steps",
        "--training.save_steps=2",
        "--training.save_prompt_pool=true",
        "--data.max_train_samples=4",
        f"--rewards.reward_funcs=[{sys.modules[__name__].__name__}:informative_for_chosen_rows]",
        "--rewards.reward_weights=[1.0]",
    ]
    with monkeypatch.context() as patch:  # killed after checkpoint-2: one epoch counted, then resumed
        killed_after(patch, 2)
        with pytest.raises(Killed):
            run_stage(stage_class(parse_stage_config(stage_class, argv, source="test")))
    assert not (out / "prompt_pool").exists()  # written at the end only
    metrics = run_stage(stage_class(parse_stage_config(stage_class, argv, source="test")))

    pool = datasets.load_from_disk(str(out / "prompt_pool"))
    assert sorted(pool["id"]) == sorted(chosen) and len(chosen) == 2
    assert pool["informative_groups"] == [2, 2]  # one per epoch, the first one restored from the checkpoint
    assert set(rows.column_names) | {"informative_groups"} == set(pool.column_names)  # no row-index column
    assert POOL_ROW_COLUMN not in pool.column_names
    assert metrics["prompt_pool/rows"] == 2 and metrics["prompt_pool/informative_groups"] == 4

    # The next RL stage trains from the pool.
    second = tmp_path / "grpo2"
    argv2 = [
        *_argv(tiny_internvl, out / "prompt_pool", second),
        "--training.max_steps=1",
        "--training.per_device_train_batch_size=8",
        "--training.num_generations=4",
        "--training.max_completion_length=8",
    ]
    metrics2 = run_stage(stage_class(parse_stage_config(stage_class, argv2, source="test")))
    assert metrics2["global_step"] == 1 and (second / COMPLETE_MARKER).exists()


def test_a_recipe_gives_reward_options_by_reward_funcs_entry(tmp_path):
    stage_class = get_stage_class("grpo")
    config = parse_stage_config(
        stage_class,
        _argv(
            Path("m"),
            Path("d"),
            tmp_path,
            '--rewards.reward_funcs=["accuracy", "my_pkg.rewards:length_penalty"]',
            '--rewards.reward_kwargs={"my_pkg.rewards:length_penalty": {"max_len": 512, "scale": 0.5}}',
        ),
        source=str(TINY_RECIPE),
    )
    assert config.rewards.reward_kwargs == {"my_pkg.rewards:length_penalty": {"max_len": 512, "scale": 0.5}}
