"""Text-only rows are refused under ZeRO-3 / FSDP before training (they would hang it); the connector stage
reports its optimizer state summed over ZeRO-3 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from skywork_rl.errors import DataError
from skywork_rl.trainers.vision_batches import refuse_mixed_image_rows, text_only_rows

REPO = Path(__file__).resolve().parents[2]
ACCELERATE = REPO / "recipes" / "accelerate"


def _images(*counts: int | None) -> datasets.Dataset:
    from PIL import Image

    picture = Image.new("RGB", (4, 4))
    return datasets.Dataset.from_dict(
        {"images": [None if n is None else [picture] * n for n in counts]},
        features=datasets.Features({"images": datasets.Sequence(datasets.Image())}),
    )


def test_text_only_rows_are_found_without_decoding_images():
    assert text_only_rows(_images(1, 0, 2, None, 1)) == [1, 3]
    single = datasets.Dataset.from_dict({"image": [None, "x.png"]})
    assert text_only_rows(single) == [0]
    assert text_only_rows(datasets.Dataset.from_dict({"prompt": ["a", "b"]})) == [0, 1]
    assert text_only_rows(_images(1, 0, 0).select([2, 0])) == [0]  # after a selection, in its order


def test_mixed_rows_are_refused_only_when_parameters_are_sharded(monkeypatch):
    mixed = {"data.train": _images(1, 0, 1)}
    refuse_mixed_image_rows(None, mixed)  # not sharded: DDP runs every rank's own forward
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(DataError, match=r"data.train: 1 of 3 rows have no image \(e.g. rows \[1\]\).*FSDP"):
        refuse_mixed_image_rows(None, mixed)
    # Every process does the same when no row, or every row, has an image.
    refuse_mixed_image_rows(None, {"data.train": _images(1, 2), "data.eval": _images(0, 0)})


def _mixed_sft_rows(source: Path, out: Path) -> Path:
    """The synthetic SFT rows with every other one made text-only (no image, no image placeholder)."""

    def strip(row: dict, index: int) -> dict:
        if index % 2 == 0:
            return row
        prompt = [
            {**m, "content": [c for c in m["content"] if c["type"] != "image"]}
            if isinstance(m["content"], list)
            else m
            for m in row["prompt"]
        ]
        return {**row, "prompt": prompt, "images": []}

    datasets.load_from_disk(str(source)).map(strip, with_indices=True).save_to_disk(str(out))
    return out


def _launch(stage: str, recipe: str, args: list[str]) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ACCELERATE / "zero3.yaml"),
    ]
    command += ["--num_processes", "2", "--mixed_precision", "no", "-m", "skywork_rl.cli", "stage", stage]
    command += ["--config", str(REPO / "recipes" / "tiny" / recipe), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)


@pytest.mark.slow
def test_zero3_refuses_text_only_rows_before_training_and_sums_the_connector_optimizer(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")
    common = [
        f"--model.name_or_path={tiny_internvl}",
        "--training.report_to=[]",
        "--training.save_strategy=no",
    ]
    mixed = _mixed_sft_rows(synthetic_dataset_dir, tmp_path / "mixed")
    refused = _launch(
        "sft", "sft.yaml", [*common, f"--data.train={mixed}", f"--training.output_dir={tmp_path / 'sft'}"]
    )
    assert refused.returncode != 0
    assert (
        "data.train: 24 of 48 rows have no image" in refused.stderr and "DeepSpeed ZeRO-3" in refused.stderr
    )
    assert not (tmp_path / "sft" / "model.safetensors").exists()

    out = tmp_path / "connector"
    connector = [
        f"--data.train={synthetic_dataset_dir}",
        f"--training.output_dir={out}",
        "--training.max_steps=2",
    ]
    # The recipe balances the miniature's task; these rows are the demo set's three tasks.
    domains = "{synthetic/count_shapes: 1, synthetic/digit_arithmetic: 1, synthetic/tallest_bar: 1}"
    ran = _launch(
        "connector", "connector.yaml", [*common, *connector, f"--mix.proportions={domains}", "--mix.total=12"]
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    metrics = json.loads((out / "stage.json").read_text())["metrics"]
    n = metrics["connector/trainable_params"]
    # Adam's two float32 moments per connector weight, in partitions over the 2 processes (plus padding
    # and step counters): one process holds about half.
    assert 8 * n <= metrics["connector/optimizer_state_bytes"] <= 8 * n + 1024
    assert (
        metrics["connector/optimizer_state_bytes_per_process"]
        <= 0.6 * metrics["connector/optimizer_state_bytes"]
    )
