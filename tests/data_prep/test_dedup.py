"""Deduplication finds planted exact and near duplicates and keeps distinct problems."""

from __future__ import annotations

import io
import json

from PIL import Image, ImageDraw

from data_prep.adapters import canonical_features
from data_prep.dedup import DedupOptions, find_duplicates, fingerprint
from skywork_rl.data.schema import user_prompt
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class

TRAIN = "A train travels 60 miles in 1.5 hours. What is its average speed in miles per hour?"


def picture(seed: int, size: int = 64) -> Image.Image:
    """A white canvas with a few dark boxes placed by `seed` (distinct seeds, distinct pictures)."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for k in range(3):
        x = (seed * 17 + k * 23) % (size - 12)
        y = (seed * 29 + k * 11) % (size - 12)
        draw.rectangle([x, y, x + 10, y + 10], fill=(20 * k, 0, 0))
    return image


def encoded(image: Image.Image, fmt: str = "PNG", **kw) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return {"bytes": buffer.getvalue(), "path": None}


def row(rid: str, text: str, image: Image.Image | None = None, fmt: str = "PNG", **kw) -> dict:
    images = [encoded(image, fmt, **kw)] if image is not None else []
    return {
        "prompt": user_prompt(text, len(images)),
        "images": images,
        "solution": "1",
        "source": "t",
        "id": rid,
    }


def planted_rows() -> list[dict]:
    count = "How many dark boxes are in the picture?"
    return [
        row("keep-train", TRAIN),
        row(
            "dup-train-punct",
            "A train travels 60 miles in 1.5 hours; what is its average speed (in miles per hour)?",
        ),
        row(
            "near-train-reword",
            "A train travels 60 miles in 1.5 hours. What is the average speed in miles per hour?",
        ),
        row("keep-other-numbers", TRAIN.replace("60", "90")),
        row("keep-pic-0", count, picture(0)),
        row("dup-pic-0-jpeg", count, picture(0), fmt="JPEG", quality=95),
        row("near-pic-0-resized", count, picture(0).resize((80, 80))),
        row("keep-pic-5", count, picture(5)),
        row("keep-pic-9", count, picture(9)),
        row("keep-unrelated", "Which fraction is larger, 3/4 or 2/3?"),
    ]


def test_planted_duplicates_are_found_and_distinct_rows_kept():
    rows = planted_rows()
    report = find_duplicates((fingerprint(r) for r in rows), DedupOptions())
    verdicts = {r["id"]: v for r, v in zip(rows, report.verdicts, strict=True)}
    kept = {rid for rid, v in verdicts.items() if v is None}
    assert kept == {
        "keep-train",
        "keep-other-numbers",
        "keep-pic-0",
        "keep-pic-5",
        "keep-pic-9",
        "keep-unrelated",
    }
    assert verdicts["dup-train-punct"] == ("exact_duplicate", 0)
    assert verdicts["near-train-reword"] == ("near_duplicate", 0)
    # JPEG re-encoding changes pixels slightly: not exact, but the same picture and text -> near duplicate
    assert verdicts["dup-pic-0-jpeg"] == ("near_duplicate", 4)
    assert verdicts["near-pic-0-resized"] == ("near_duplicate", 4)
    assert report.counts() == {"exact_duplicate": 1, "near_duplicate": 3}


def bars(heights: list[int]) -> Image.Image:
    image = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    for k, h in enumerate(heights):
        draw.rectangle([6 + 20 * k, 63 - h, 16 + 20 * k, 63], fill=(40, 80, 220))
    return image


def test_near_identical_charts_with_different_answers_are_different_problems():
    question = "Which bar is the tallest? Answer with its letter."
    rows = [row("a", question, bars([40, 38, 10])), row("b", question, bars([38, 40, 10]))]
    rows[1]["solution"] = "B"
    rows[0]["solution"] = "A"
    report = find_duplicates((fingerprint(r) for r in rows), DedupOptions())
    assert report.verdicts == [None, None]
    rows[1]["solution"] = "A"  # same question, same answer, a bar two pixels off: a near copy
    report = find_duplicates((fingerprint(r) for r in rows), DedupOptions())
    assert report.verdicts == [None, ("near_duplicate", 0)]


def test_same_pixels_in_another_file_format_are_an_exact_duplicate():
    rows = [row("a", "Count the boxes.", picture(3)), row("b", "Count the boxes!", picture(3), fmt="BMP")]
    report = find_duplicates((fingerprint(r) for r in rows), DedupOptions(near=False))
    assert report.verdicts == [None, ("exact_duplicate", 0)]


def test_dedup_stage_with_decontamination_writes_counts(tmp_path):
    from datasets import Dataset

    rows = planted_rows()
    Dataset.from_list(rows, features=canonical_features(False)).save_to_disk(str(tmp_path / "in"))
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        json.dumps({"question": "Which fraction is larger, 3/4 or 2/3?", "answer": "3/4"}) + "\n"
    )
    out = tmp_path / "out"
    argv = [
        "--input.path",
        str(tmp_path / "in"),
        "--output.output_dir",
        str(out),
        "--decontaminate.benchmarks",
        json.dumps([str(bench)]),
    ]
    stage_class = get_stage_class("dedup")
    metrics = run_stage(stage_class(parse_stage_config(stage_class, argv)))
    assert metrics["rows"] == 5
    assert metrics["dropped/contaminated"] == 1
    assert metrics["dropped/exact_duplicate"] == 1 and metrics["dropped/near_duplicate"] == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["benchmark_questions"] == 1
