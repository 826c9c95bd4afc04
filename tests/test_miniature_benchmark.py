"""The learning benchmarks' shared start (benchmarks/miniature.py) is reused only when nothing it was
built from changed: a stale start would make every number measured from it wrong."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from datasets import load_from_disk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import miniature  # noqa: E402


def _args(out: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    miniature.add_arguments(parser)
    args = parser.parse_args([])
    miniature.smoke(args)
    args.out = out
    return args


def _record(start: Path) -> dict:
    return json.loads((start / "stage.json").read_text())


@pytest.mark.slow
def test_the_start_is_reused_only_while_its_sft_steps_and_train_rows_are_unchanged(tmp_path):
    args = _args(tmp_path)
    start = miniature.build_start(args)
    first, written = _record(start), (start / "stage.json").stat().st_mtime_ns
    assert first["status"] == "complete" and first["config"]["training"]["max_steps"] == args.sft_steps

    assert miniature.build_start(args) == start
    assert (start / "stage.json").stat().st_mtime_ns == written  # unchanged: not trained again

    args.sft_steps += 1
    miniature.build_start(args)
    assert _record(start)["config"]["training"]["max_steps"] == args.sft_steps  # rebuilt, not skipped

    args.train_rows += 4
    trained_on = _record(start)["fingerprint"]["inputs"]["data"]
    miniature.build_start(args)
    assert _record(start)["fingerprint"]["inputs"]["data"] != trained_on  # rebuilt on the new split
    assert len(load_from_disk(str(tmp_path / "data" / "train"))) == args.train_rows


def _colour_sets(
    split: str, n: int, seed: int, tasks: tuple[str, ...] = miniature.TASKS
) -> set[frozenset[str]]:
    """The set of colours each picture of `split` shows, read off its pixels (the shapes are drawn
    without antialiasing, so each colour's exact RGB value is in the image)."""
    from skywork_rl.miniature.synthetic import COLORS, generate_rows

    sets = set()
    for row in generate_rows(n, seed, tasks, split=split):
        pixels = {rgb for _, rgb in row["images"][0].convert("RGB").getcolors(1 << 16)}
        sets.add(frozenset(name for name, rgb in COLORS.items() if rgb in pixels))
    return sets


def test_no_heldout_picture_of_the_miniature_shows_a_colour_combination_a_training_picture_shows():
    """Disjoint in content, not only by key: a memory of the train and RL pictures holds no held-out
    colour combination (the old `shape_color` split put every colour in every split)."""
    heldout = _colour_sets("heldout", 60, miniature.HELDOUT_SEED)
    seen = _colour_sets("train", 60, miniature.TRAIN_SEED) | _colour_sets("rl", 60, miniature.RL_SEED)
    assert heldout and seen
    assert not heldout & seen
    # every colour the held-out pictures use is still taught, only never in these combinations
    assert set().union(*heldout) <= set().union(*seen)


def test_no_heldout_picture_of_the_half_color_task_shows_a_colour_combination_a_training_picture_shows():
    """`half_color` (two squares, left / right) keeps the compositional rule: read off the pixels, the
    held-out pictures show exactly the held-out pairs, which no train or RL picture shows together."""
    task = ("half_color",)
    heldout = _colour_sets("heldout", 60, miniature.HELDOUT_SEED, task)
    seen = _colour_sets("train", 60, miniature.TRAIN_SEED, task) | _colour_sets(
        "rl", 60, miniature.RL_SEED, task
    )
    assert heldout == {frozenset({"green", "red"}), frozenset({"blue", "orange"})}
    assert not heldout & seen
    assert set().union(*heldout) == set().union(*seen)


def test_half_color_answer_is_the_colour_drawn_in_the_asked_half_and_the_trace_reads_that_half_first():
    from skywork_rl.miniature.synthetic import COLORS, generate_rows

    rows = list(generate_rows(40, 0, ("half_color",), split="rl"))
    for row in rows:
        image = row["images"][0].convert("RGB")
        question = row["prompt"][-1]["content"][-1]["text"]
        asked = "left" if "left" in question else "right"
        width = image.width // 2
        crop = image.crop(
            (0, 0, width, image.height) if asked == "left" else (width, 0, image.width, image.height)
        )
        drawn = {name for name, rgb in COLORS.items() if rgb in {c for _, c in crop.getcolors(1 << 16)}}
        assert drawn == {row["solution"]}
        trace = row["completion"][-1]["content"][0]["text"]
        other = "right" if asked == "left" else "left"
        assert trace.startswith(f"<think>\n{asked} {row['solution']}, {other} ")  # the asked half read first
        assert f"The {asked} is {row['solution']}." in trace
    assert {"left" in r["prompt"][-1]["content"][-1]["text"] for r in rows} == {True, False}


def test_the_task_option_draws_the_saved_splits_from_that_task(tmp_path):
    args = _args(tmp_path)
    assert args.task == "quadrant_color"  # the default: the recorded benchmarks' task
    args.task = "half_color"
    miniature.save_splits(args)
    for split in ("train", "rl", "heldout"):
        rows = load_from_disk(str(tmp_path / "data" / split))
        assert all(
            "left" in q or "right" in q for q in (r["prompt"][-1]["content"][-1]["text"] for r in rows)
        )
        assert not any("top" in r["prompt"][-1]["content"][-1]["text"] for r in rows)


def _row(pixels: list[tuple[int, int, int]], answer: str) -> dict:
    from PIL import Image

    image = Image.new("RGB", (2, 2))
    image.putdata(pixels)
    return {"images": [image], "solution": answer}


def test_memorization_baseline_answers_with_the_nearest_memory_pictures_answer():
    white, red, blue = (255, 255, 255), (220, 40, 40), (40, 80, 220)
    memory = [_row([red] * 4, "1"), _row([blue] * 4, "2"), _row([white] * 4, "3")]
    heldout = [
        _row([red, red, red, white], "1"),  # nearest: all red -> "1", right
        _row([blue, blue, blue, white], "4"),  # nearest: all blue -> "2", wrong
        _row([white, white, white, red], "3"),  # nearest: all white -> "3", right
        _row([blue, blue, blue, red], "3"),  # nearest: all blue -> "2", wrong
    ]
    assert miniature.memorization_baseline(heldout, memory) == 0.5
    assert miniature.chance_accuracy(heldout) == pytest.approx(1 / 3)  # answers 1, 3, 4
    with pytest.raises(ValueError, match="memory rows"):
        miniature.memorization_baseline(heldout, [])


def test_bootstrap_interval_of_the_mean_over_seeds():
    assert miniature.bootstrap_interval([0.5]) is None  # one seed: no spread to resample
    assert miniature.bootstrap_interval([0.7, 0.7, 0.7]) == [0.7, 0.7]
    low, high = miniature.bootstrap_interval([0.2, 0.4, 0.6, 0.8, 1.0])
    assert 0.2 < low < 0.6 < high < 1.0  # around the mean, inside the range of the seeds
    assert miniature.bootstrap_interval([0.2, 0.4, 0.6, 0.8, 1.0]) == [low, high]  # reproducible
    assert miniature.mean_interval([0.2, 0.4]) == {"mean": 0.3, "ci95": [0.2, 0.4]}
