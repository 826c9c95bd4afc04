"""Distillation keeps only verified, well-formed, length-bounded traces and writes SFT rows with images."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from PIL import Image

from data_prep.distill import DistillOptions, judge_candidates
from skywork_rl.data.schema import SFT_COLUMNS, user_prompt
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class

LONG = "Count each shape in the picture carefully, row by row."


class ScriptedTeacher:
    """A teacher whose candidates are, in order: unformatted, wrong, too short, right (twice)."""

    built = 0  # how many times a stage loaded the teacher

    def __init__(self, name_or_path: str = "teacher") -> None:
        self.name_or_path = name_or_path
        ScriptedTeacher.built += 1

    def generate(
        self, rows: Sequence[dict[str, Any]], *, num_generations: int = 1, **kw: Any
    ) -> list[list[str]]:
        out = []
        for row in rows:
            gold = row["solution"]
            if row["id"] == "hopeless":
                out.append([f"<think>{LONG}</think> \\boxed{{{int(gold) + 1}}}"] * num_generations)
                continue
            candidates = [
                f"{LONG} so \\boxed{{{gold}}}",  # no think block
                f"<think>{LONG}</think> \\boxed{{{int(gold) + 1}}}",  # wrong
                f"<think>ok</think> \\boxed{{{gold}}}",  # right but shorter than min_chars
                f"<think>{LONG} First pass.</think> \\boxed{{{gold}}}",
                f"<think>{LONG} Second pass.</think> \\boxed{{{gold}}}",
            ]
            out.append(candidates[:num_generations])
        return out


def _run_distill(argv: list[str]) -> dict[str, float]:
    """The distill stage parsed from `argv` and run in this process; its metrics."""
    stage_class = get_stage_class("distill")
    return run_stage(stage_class(parse_stage_config(stage_class, argv)))


def test_candidates_are_judged_in_order_and_counted_per_reason():
    candidates = ScriptedTeacher().generate([{"id": "a", "solution": "3"}], num_generations=5)[0]
    scores = [1.0, 0.0, 1.0, 1.0, 1.0]
    kept, rejected = judge_candidates(candidates, scores, DistillOptions(min_chars=30, keep_per_prompt=1))
    assert kept == [candidates[3]]
    assert rejected == {"bad_format": 1, "wrong_answer": 1, "too_short": 1}
    kept, _ = judge_candidates(candidates, scores, DistillOptions(min_chars=30, keep_per_prompt=2))
    assert kept == candidates[3:]


def distill_argv(tmp_path, **distill) -> list[str]:
    """Recipe arguments for the distill stage over three prompts (one the teacher never solves)."""
    from datasets import Dataset, Features, List, Value
    from datasets import Image as HFImage

    if not (tmp_path / "in").exists():
        message = {
            "role": Value("string"),
            "content": List({"type": Value("string"), "text": Value("string")}),
        }
        features = Features(
            {
                "prompt": List(message),
                "images": List(HFImage()),
                "solution": Value("string"),
                "source": Value("string"),
                "id": Value("string"),
            }
        )
        rows = [
            {
                "prompt": user_prompt("How many?", 1),
                "images": [Image.new("RGB", (12, 12), c)],
                "solution": s,
                "source": "t",
                "id": i,
            }
            for i, c, s in [("a", "red", "3"), ("hopeless", "blue", "5"), ("b", "green", "7")]
        ]
        Dataset.from_list(rows, features=features).save_to_disk(str(tmp_path / "in"))
    options = {"num_generations": 5, "keep_per_prompt": 2, "min_chars": 30, "chunk_size": 2, **distill}
    return [
        "--input.path",
        str(tmp_path / "in"),
        "--output.output_dir",
        str(tmp_path / "sft"),
        "--model.name_or_path",
        "teacher",
        "--model.backend",
        f"{ScriptedTeacher.__module__}:ScriptedTeacher",
        "--distill",
        json.dumps(options),
    ]


def test_distill_stage_writes_verified_sft_rows_with_images(tmp_path):
    out = tmp_path / "sft"
    argv = distill_argv(tmp_path)
    metrics = _run_distill(argv)
    assert metrics["rows"] == 4 and metrics["dropped/no_verified_trace"] == 1
    import datasets

    sft = datasets.load_from_disk(str(out))
    assert set(SFT_COLUMNS) <= set(sft.column_names)
    assert sft["id"] == ["a", "a#1", "b", "b#1"]
    first = sft[0]
    assert first["completion"][0]["role"] == "assistant"
    assert (
        first["completion"][0]["content"][0]["text"].startswith("<think>")
        and "\\boxed{3}" in first["completion"][0]["content"][0]["text"]
    )
    assert first["images"][0].getpixel((0, 0)) == (255, 0, 0)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["candidates_rejected"] == {"bad_format": 2, "wrong_answer": 7, "too_short": 2}


def test_tightening_the_acceptance_rules_rejudges_saved_candidates_without_the_teacher(tmp_path):
    import datasets

    _run_distill(distill_argv(tmp_path))
    first = datasets.load_from_disk(str(tmp_path / "sft"))
    assert first["id"] == ["a", "a#1", "b", "b#1"]
    longest = max(len(m[0]["content"][0]["text"]) for m in first["completion"])
    built = ScriptedTeacher.built
    argv = [*distill_argv(tmp_path, max_chars=longest - 1), "--output.overwrite", "true"]
    metrics = _run_distill(argv)
    manifest = json.loads((tmp_path / "sft" / "manifest.json").read_text())
    assert manifest["chunks_run_now"] == 0 and ScriptedTeacher.built == built
    assert metrics["rows"] == 2 and manifest["candidates_rejected"]["too_long"] == 2
    second = datasets.load_from_disk(str(tmp_path / "sft"))
    assert second["id"] == ["a", "b"]
    assert all("First pass." in m[0]["content"][0]["text"] for m in second["completion"])


def test_a_distillation_with_no_verified_trace_fails_with_the_rejections_and_saves_nothing(tmp_path):
    import datasets

    from data_prep.refusals import EmptyOutputError

    strict = distill_argv(tmp_path, max_chars=31)  # every well-formed trace is longer
    with pytest.raises(
        EmptyOutputError, match=r"0 of 3 rows left \(dropped: no_verified_trace=3\)"
    ) as raised:
        _run_distill(strict)
    assert "No candidate trace was kept (rejected: too_long=13, too_short=2)" in str(raised.value)
    out = tmp_path / "sft"
    assert not (out / "manifest.json").exists() and not (out / "dataset_info.json").exists()
    # nothing looks finished, so looser rules need no overwrite and re-judge the saved candidates
    built = ScriptedTeacher.built
    metrics = _run_distill(distill_argv(tmp_path))
    assert metrics["rows"] == 4 and ScriptedTeacher.built == built
    assert datasets.load_from_disk(str(out))["id"] == ["a", "a#1", "b", "b#1"]


class SkippingTeacher(ScriptedTeacher):
    """The scripted teacher behind a backend that could not take prompt ``b`` (as vLLM skips a
    prompt longer than its max_model_len): no candidates for it, the reason in ``skipped``."""

    def generate(self, rows: Sequence[dict[str, Any]], **kw: Any) -> list[list[str]]:
        from skywork_rl.generation.protocol import Generations

        out = super().generate(rows, **kw)
        skipped = {i: "prompt_too_long" for i, row in enumerate(rows) if row["id"] == "b"}
        return Generations([[] if i in skipped else texts for i, texts in enumerate(out)], skipped)


def test_a_prompt_the_teacher_could_not_take_is_counted_not_generated(tmp_path):
    argv = distill_argv(tmp_path)
    argv[argv.index("--model.backend") + 1] = f"{SkippingTeacher.__module__}:SkippingTeacher"
    metrics = _run_distill(argv)
    # "hopeless" got candidates and none verified; "b" never reached the teacher
    assert metrics["rows"] == 2 and metrics["dropped/no_verified_trace"] == 1
    assert metrics["dropped/not_generated"] == 1
    chunk_files = sorted((tmp_path / "sft" / "distill_chunks").glob("chunk-*.jsonl"))
    records = {r["id"]: r for p in chunk_files for r in map(json.loads, p.read_text().splitlines())}
    assert records["b"]["candidates"] == [] and records["b"]["not_generated"] == "prompt_too_long"
    assert "not_generated" not in records["hopeless"]
