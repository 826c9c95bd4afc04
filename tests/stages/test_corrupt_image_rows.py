"""A corrupt image in a training stage's data fails in one line naming the row, and `clean` drops exactly it."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset, Image, List
from helpers import cli_error, tiny_stage

from skywork_rl.data.image_rows import undecodable_image_rows
from skywork_rl.data.loading import load_stage_dataset

REPO = Path(__file__).resolve().parents[2]
BAD_ROWS = (3, 9)


@pytest.fixture
def corrupt_data(tmp_path, synthetic_dataset_dir) -> tuple[Path, list[str]]:
    """16 synthetic rows; rows 3 (not an image) and 9 (a truncated PNG) have broken images."""
    rows = Dataset.load_from_disk(str(synthetic_dataset_dir)).select(range(16))
    rows = rows.cast_column("images", List(Image(decode=False))).to_list()
    rows[3]["images"] = [{"bytes": b"not an image at all", "path": None}]
    good = rows[9]["images"][0]["bytes"]
    rows[9]["images"] = [{"bytes": good[: len(good) // 2], "path": None}]
    features = Dataset.load_from_disk(str(synthetic_dataset_dir)).features
    path = tmp_path / "data"
    Dataset.from_list(rows, features=features).save_to_disk(str(path))
    return path, [rows[i]["id"] for i in BAD_ROWS]


def test_scan_names_the_rows_clean_drops_and_writes_nothing_beside_the_data(corrupt_data):
    from data_prep.cleaning import CleanOptions, clean_dataset

    path, bad_ids = corrupt_data
    before = sorted(p.name for p in path.iterdir())
    dataset = load_stage_dataset(str(path))
    found = undecodable_image_rows(dataset)
    assert [(i, row_id) for i, row_id, _ in found] == list(zip(BAD_ROWS, bad_ids, strict=True))
    assert sorted(p.name for p in path.iterdir()) == before  # no cache file in the user's folder
    kept, dropped = clean_dataset(dataset, CleanOptions(normalize_answers=False))
    assert dropped == {"corrupt_image": 2}
    assert set(dataset["id"]) - set(kept["id"]) == set(bad_ids)


@pytest.mark.slow
def test_sft_on_a_corrupt_image_fails_in_one_line_naming_the_row(tmp_path, tiny_internvl, corrupt_data):
    path, bad_ids = corrupt_data
    code, line = cli_error(
        tiny_stage(
            "sft",
            "sft.yaml",
            f"--model.name_or_path={tiny_internvl}",
            f"--data.train={path}",
            f"--training.output_dir={tmp_path / 'out'}",
            "--training.max_steps=4",
            "--training.per_device_train_batch_size=4",
        ),
    )
    assert code == 1
    assert f"data.train ({path}): 2 row(s) with an image that does not decode" in line
    assert (
        f"row 3 (id {bad_ids[0]!r}): UnidentifiedImageError" in line and f"row 9 (id {bad_ids[1]!r})" in line
    )
    assert "`skywork-rl stage clean`" in line and "drops exactly these rows" in line
