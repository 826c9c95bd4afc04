"""Cleaning: corrupt/missing images and empty answers are counted per reason and skipped."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from data_prep.adapters import canonical_features
from data_prep.cleaning import CleanOptions, clean_dataset, normalize_answer
from data_prep.manifest import OutputExistsError
from skywork_rl.data.schema import user_prompt
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class


def png(color: str = "red", size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def row(
    i: int, images: list, solution: str = "3", n_parts: int | None = None, question: str = "How many?"
) -> dict:
    parts = len(images) if n_parts is None else n_parts
    return {
        "prompt": user_prompt(question, parts),
        "images": images,
        "solution": solution,
        "source": "test",
        "id": f"r{i}",
    }


@pytest.fixture
def dirty_dataset(tmp_path):
    from datasets import Dataset

    truncated = png("blue")[:40]  # a PNG header and part of its data: opens lazily, fails to load
    rows = [
        row(0, [{"bytes": png(), "path": None}], solution=" $\\boxed{1,000}$. "),
        row(1, [{"bytes": b"not an image at all", "path": None}]),
        row(2, [{"bytes": truncated, "path": None}]),
        row(3, [None]),
        row(4, [{"bytes": png("green"), "path": None}], solution="  "),
        row(5, [{"bytes": png(), "path": None}], n_parts=2),
        row(6, [], question="What is 2+2?", solution="4"),
        row(7, [{"bytes": png(), "path": None}], question=""),
    ]
    path = tmp_path / "dirty"
    Dataset.from_list(rows, features=canonical_features(False)).save_to_disk(str(path))
    return path


def test_corrupt_missing_and_unanswerable_rows_are_counted_and_skipped(dirty_dataset):
    import datasets

    kept, dropped = clean_dataset(datasets.load_from_disk(str(dirty_dataset)), CleanOptions())
    assert kept["id"] == ["r0", "r6"]
    assert dropped == {
        "corrupt_image": 2,
        "missing_image": 1,
        "empty_solution": 1,
        "image_count_mismatch": 1,
        "empty_question": 1,
    }
    assert kept["solution"] == ["1000", "4"]
    assert kept[0]["images"][0].size == (16, 16)  # images decode again after cleaning


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$\\frac{1}{2}$", "\\frac{1}{2}"),
        ("72.", "72"),
        ("(b)", "B"),
        ("x", "x"),
        ("#### 1,234", "1234"),
        ("3.5", "3.5"),
    ],
)
def test_normalize_answer_strips_notation_only(raw, expected):
    assert normalize_answer(raw) == expected


def test_clean_stage_writes_manifest_and_refuses_to_overwrite(dirty_dataset, tmp_path):
    out = tmp_path / "clean"
    argv = ["--input.path", str(dirty_dataset), "--output.output_dir", str(out)]
    stage_class = get_stage_class("clean")
    metrics = run_stage(stage_class(parse_stage_config(stage_class, argv)))
    assert metrics["rows"] == 2 and metrics["dropped/corrupt_image"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows_in"] == 8 and manifest["rows_out"] == 2 and manifest["dropped_total"] == 6
    assert manifest["config"]["input"]["path"] == str(dirty_dataset) and "clean" in manifest["timings_s"]
    with pytest.raises(OutputExistsError, match="output.overwrite: true"):
        run_stage(stage_class(parse_stage_config(stage_class, argv)))
    again = run_stage(stage_class(parse_stage_config(stage_class, [*argv, "--output.overwrite", "true"])))
    assert again["rows"] == 2


def test_a_refused_rerun_leaves_the_finished_output_and_its_marker_intact(dirty_dataset, tmp_path):
    from skywork_rl.stages.base import COMPLETE_MARKER, force_overrides_for

    out = tmp_path / "clean"
    argv = ["--input.path", str(dirty_dataset), "--output.output_dir", str(out)]
    stage_class = get_stage_class("clean")
    run_stage(stage_class(parse_stage_config(stage_class, argv)))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert COMPLETE_MARKER in before and "manifest.json" in before and "stage.json" in before
    with pytest.raises(OutputExistsError):
        run_stage(stage_class(parse_stage_config(stage_class, argv)))
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before
    # `skywork-rl run --force` passes these overrides: the finished stage re-runs and finishes again
    assert force_overrides_for(stage_class) == {"output": {"overwrite": True}}
    run_stage(stage_class(parse_stage_config(stage_class, [*argv, "--output.overwrite", "true"])))
    assert (out / COMPLETE_MARKER).exists()
    assert json.loads((out / "stage.json").read_text())["status"] == "complete"
