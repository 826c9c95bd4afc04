"""Train, RL and held-out problems of the synthetic data never overlap, whatever seed drew them."""

from __future__ import annotations

import pytest

from skywork_rl.miniature.synthetic import (
    COMPOSITIONAL_TASKS,
    MINIATURE_TASKS,
    SPLITS,
    TASKS,
    generate_rows,
    split_of,
)


def test_train_rl_and_heldout_splits_never_share_a_problem():
    tasks = (*MINIATURE_TASKS, *COMPOSITIONAL_TASKS, *TASKS)
    ids = {
        split: {row["id"] for seed in (0, 1) for row in generate_rows(60, seed, tasks, 28, split=split)}
        for split in SPLITS
    }
    for split in SPLITS:
        assert len(ids[split]) > 60  # two seeds drew different problems, each counted once
    assert not ids["train"] & ids["rl"]
    assert not ids["train"] & ids["heldout"]
    assert not ids["rl"] & ids["heldout"]


def test_same_seed_draws_the_same_rows_and_a_split_holds_each_problem_once():
    first = [row["id"] for row in generate_rows(40, 3, MINIATURE_TASKS, 28, split="heldout")]
    again = [row["id"] for row in generate_rows(40, 3, MINIATURE_TASKS, 28, split="heldout")]
    assert first == again
    assert len(set(first)) == len(first)


def test_split_is_a_function_of_the_problem_alone():
    assert {split_of(f"key-{i}") for i in range(64)} == set(SPLITS)
    assert split_of("shape_color|circle:red|0,0,28|56") == split_of("shape_color|circle:red|0,0,28|56")


def test_unknown_split_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown split 'test'.*heldout"):
        list(generate_rows(1, 0, MINIATURE_TASKS, 28, split="test"))
