"""Counting informative groups per train row, and writing the pool (R1V2's filtered prompt pool)."""

from __future__ import annotations

import datasets
import pytest

from skywork_rl.trainers.prompt_pool import (
    POOL_ROW_COLUMN,
    count_informative_groups,
    with_row_index,
    write_prompt_pool,
)


def test_a_group_counts_once_per_generation_if_any_rollout_was_informative():
    # Rows 7 and 3, 3 rollouts each (a group may straddle processes: the gathered batch is in any order).
    rows = [7, 7, 3, 7, 3, 3]
    counts = count_informative_groups({}, rows, [False, True, False, True, False, False])
    assert counts == {7: 1}  # row 3's group was all zero-advantage
    counts = count_informative_groups(counts, [3, 3, 5, 5], [True, False, False, False])
    assert counts == {7: 1, 3: 1}


def test_pool_is_the_counted_rows_with_their_counts(tmp_path):
    train = datasets.Dataset.from_dict({"id": ["a", "b", "c"], "informative_groups": [9, 9, 9]})
    assert write_prompt_pool(train, {2: 3, 0: 1}, tmp_path / "pool") == 2
    pool = datasets.load_from_disk(str(tmp_path / "pool"))
    # A pool made from a pool: this run's counts replace the old column.
    assert pool["id"] == ["a", "c"] and pool["informative_groups"] == [1, 3]
    write_prompt_pool(train, {}, tmp_path / "pool")  # rewritten in place; nothing informative: no rows
    empty = datasets.load_from_disk(str(tmp_path / "pool"))
    assert len(empty) == 0 and empty.features["informative_groups"].dtype == "int64"
    assert [p.name for p in tmp_path.iterdir()] == ["pool"]  # no temporary folder left behind


def test_row_index_needs_an_indexable_dataset():
    train = datasets.Dataset.from_dict({"id": ["a", "b"]})
    assert with_row_index(train)[POOL_ROW_COLUMN] == [0, 1]
    with pytest.raises(ValueError, match="save_prompt_pool"):
        with_row_index(train.to_iterable_dataset())
