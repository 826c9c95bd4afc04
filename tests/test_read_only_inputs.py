"""Inputs are read-only to the project: reading a `save_to_disk` folder (and mapping, filtering,
shuffling what was read, as stages and TRL do) never writes into it, so its fingerprint stays and a
read-only folder works. The caches go under the reading stage's own output folder."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from datasets import Dataset

from skywork_rl.data.loading import DATASETS_CACHE, dataset_cache_under, load_stage_dataset
from skywork_rl.records.fingerprint import input_fingerprint


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `folder`: size, modification time and content hash."""
    return {
        str(p.relative_to(folder)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _read_only(folder: Path) -> None:
    # Tests run as root, which ignores write bits: the snapshot comparison is what proves nothing was
    # written; the bits make a non-root run fail loudly on any write.
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture
def user_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "user" / "datasets"
    rows = [{"id": f"r{i}", "solution": str(i), "text": "x" * i} for i in range(20)]
    Dataset.from_list(rows).save_to_disk(str(path))
    _read_only(path)
    return path


def _transform(ds: Dataset) -> Dataset:
    ds = ds.map(lambda row: {"n": len(row["text"])})
    ds = ds.filter(lambda row: row["n"] % 2 == 0)
    return ds.shuffle(seed=0)


def test_reading_and_mapping_a_dataset_folder_writes_nothing_into_it(
    user_dataset: Path, tmp_path: Path
) -> None:
    before, fingerprint = _snapshot(user_dataset), input_fingerprint(str(user_dataset))
    with dataset_cache_under(tmp_path / "stage" / DATASETS_CACHE) as cache:
        ds = _transform(load_stage_dataset(str(user_dataset)))
        assert len(ds) == 10 and sorted(ds["n"]) == list(range(0, 20, 2))
        assert all(Path(f["filename"]).is_relative_to(cache) for f in ds.cache_files)
    assert list(cache.glob("*/cache-*.arrow"))  # the caches are the stage's
    assert _snapshot(user_dataset) == before
    assert input_fingerprint(str(user_dataset)) == fingerprint


def test_a_second_node_mirrors_and_caches_in_its_own_sub_folder_of_the_stage_cache(
    user_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stage's output folder is on shared storage in a multi-node launch: node 1 must not make
    # (rename) the files node 0 makes, nor write the same `datasets` cache file a second time.
    monkeypatch.setenv("GROUP_RANK", "1")
    with dataset_cache_under(tmp_path / "stage" / DATASETS_CACHE) as cache:
        ds = _transform(load_stage_dataset(str(user_dataset)))
        assert all(Path(f["filename"]).is_relative_to(cache / "node1") for f in ds.cache_files)
    assert [p.name for p in cache.iterdir()] == ["node1"]


def test_reading_outside_a_stage_caches_in_a_temporary_folder_not_the_input(user_dataset: Path) -> None:
    before = _snapshot(user_dataset)
    ds = _transform(load_stage_dataset(str(user_dataset)))
    assert len(ds) == 10
    assert not any(Path(f["filename"]).is_relative_to(user_dataset) for f in ds.cache_files)
    assert _snapshot(user_dataset) == before


def test_a_stage_reading_a_read_only_folder_runs_and_leaves_it_unchanged(
    user_dataset: Path, tmp_path: Path
) -> None:
    from data_prep.adapters import canonical_features
    from skywork_rl.data.schema import user_prompt
    from skywork_rl.stages.base import parse_stage_config, run_stage
    from skywork_rl.stages.registry import get_stage_class

    rows = [
        {
            "prompt": user_prompt(f"What is {i}+1?", 0),
            "images": [],
            "solution": str(i + 1),
            "source": "t",
            "id": f"r{i}",
        }
        for i in range(6)
    ]
    data = tmp_path / "user" / "rows"
    Dataset.from_list(rows, features=canonical_features(False)).save_to_disk(str(data))
    _read_only(data)
    before, fingerprint = _snapshot(data), input_fingerprint(str(data))
    out = tmp_path / "clean"
    stage_class = get_stage_class("clean")
    argv = ["--input.path", str(data), "--output.output_dir", str(out)]
    metrics = run_stage(stage_class(parse_stage_config(stage_class, argv)))
    assert metrics["rows"] == 6
    assert _snapshot(data) == before and input_fingerprint(str(data)) == fingerprint
    assert not (out / DATASETS_CACHE).exists()  # removed once the stage completed
    assert len(load_stage_dataset(str(out))) == 6
    assert os.access(out, os.W_OK)
