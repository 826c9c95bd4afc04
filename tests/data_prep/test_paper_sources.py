"""The public sources of the paper recipes' data stages, each on a small local file in its published
layout (the hub cards' column names and types), through the `load-data` and `mix-data` stages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from data_prep.standins import scienceqa_features
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.data.schema import prompt_text
from skywork_rl.errors import DataError
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class


def png(color: str = "red", size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def image_parts(row: dict) -> int:
    return sum(p["type"] == "image" for m in row["prompt"] for p in m["content"])


def load_data(source: Path, out: Path, mapping: str, columns: dict | None = None, **extra: str) -> dict:
    argv = ["--input.path", str(source), "--source.mapping", mapping, "--output.output_dir", str(out)]
    if columns:
        argv += ["--source.columns", json.dumps(columns)]
    for key, value in extra.items():
        argv += [f"--{key}", value]
    stage_class = get_stage_class("load-data")
    return run_stage(stage_class(parse_stage_config(stage_class, argv)))


def write_parquet(path: Path, rows: list[dict], features: dict) -> Path:
    from datasets import Dataset, Features

    Dataset.from_list(rows, features=Features(features)).to_parquet(str(path))
    return path


def scienceqa_file(path: Path, answers: tuple[int, int] = (1, 0)) -> Path:
    """derek-thomas/ScienceQA's parquet: `image` (null for text-only items), `choices`, `answer` int8."""
    features = scienceqa_features()
    common = {"task": "closed choice", "grade": "grade4", "lecture": "", "solution": "", "skill": "x"}
    rows = [
        {
            **common,
            "image": {"bytes": png(), "path": None},
            "question": "Which of these states is farthest north?",
            "choices": ["West Virginia", "Louisiana", "Arizona"],
            "answer": answers[0],
            "hint": "",
            "subject": "social science",
            "topic": "geography",
            "category": "Geography",
        },
        {
            **common,
            "image": None,
            "question": "Which tense does the sentence use?",
            "choices": ["past tense", "future tense"],
            "answer": answers[1],
            "hint": "Mona will print her name.",
            "subject": "language science",
            "topic": "verbs",
            "category": "Verb tense",
        },
    ]
    return write_parquet(path, rows, features)


def test_scienceqa_rows_carry_their_context_options_and_the_answer_letter(tmp_path):
    metrics = load_data(scienceqa_file(tmp_path / "train.parquet"), tmp_path / "out", "scienceqa")
    rows = load_stage_dataset(str(tmp_path / "out"))
    assert metrics["rows"] == 2 and rows["solution"] == ["B", "A"]
    assert rows["source"] == ["scienceqa"] * 2 and rows["id"] == ["scienceqa-train-0", "scienceqa-train-1"]
    first, second = prompt_text(rows[0]["prompt"]), prompt_text(rows[1]["prompt"])
    assert first.endswith("farthest north?\nChoices:\nA. West Virginia\nB. Louisiana\nC. Arizona")
    assert second.startswith("Context: Mona will print her name.\n\nWhich tense")
    # the picture of the first item is kept; the text-only item stays, without an image
    assert image_parts(rows[0]) == 1 and image_parts(rows[1]) == 0 and rows[1]["images"] == []


def test_scienceqa_answer_that_indexes_no_option_names_the_row_and_the_column(tmp_path):
    source = scienceqa_file(tmp_path / "train.parquet", answers=(1, 5))
    with pytest.raises(
        DataError, match=r"row 1, column 'answer' .*5 is not the index of one of its 2 options"
    ):
        load_data(source, tmp_path / "out", "scienceqa")


def test_sciq_rows_ask_for_the_answer_text(tmp_path):
    from datasets import Value

    text = Value("string")
    columns = ("question", "distractor3", "distractor1", "distractor2", "correct_answer", "support")
    rows = [
        {
            "question": "What type of organism is commonly used in preparation of foods such as cheese and yogurt?",
            "distractor3": "viruses",
            "distractor1": "protozoa",
            "distractor2": "gymnosperms",
            "correct_answer": "mesophilic organisms",
            "support": "Mesophiles grow best in moderate temperature ...",
        }
    ]
    source = write_parquet(tmp_path / "train.parquet", rows, dict.fromkeys(columns, text))
    load_data(source, tmp_path / "out", "sciq")
    out = load_stage_dataset(str(tmp_path / "out"))
    assert out["solution"] == ["mesophilic organisms"] and out["source"] == ["sciq"]
    assert "Mesophiles" not in prompt_text(out[0]["prompt"]) and out[0]["images"] == []


def m3cot_file(path: Path) -> Path:
    from datasets import Image as HFImage
    from datasets import List, Value

    text = Value("string")
    features = {
        "id": text,
        "category": text,
        "image_id": text,
        "question": text,
        "choices": List(text),
        "context": text,
        "answer": text,
        "rationale": text,
        "split": text,
        "image": HFImage(),
        "domain": text,
        "topic": text,
    }
    rows = [
        {
            "id": f"m3cot-{i}",
            "category": "c",
            "image_id": str(i),
            "question": question,
            "choices": ["yes", "no"],
            "context": "",
            "answer": answer,
            "rationale": "...",
            "split": "train",
            "image": {"bytes": png(), "path": None},
            "domain": domain,
            "topic": topic,
        }
        for i, (question, answer, domain, topic) in enumerate(
            [
                ("Is the magnet attracted?", "A", "science", "physics"),
                ("Is it raining?", "B", "commonsense", "physical-commonsense"),
                ("Is the angle acute?", "A", "mathematics", "geometry"),
            ]
        )
    ]
    return write_parquet(path, rows, features)


def test_m3cot_rows_are_grouped_by_their_domain(tmp_path):
    load_data(m3cot_file(tmp_path / "train.parquet"), tmp_path / "out", "m3cot")
    out = load_stage_dataset(str(tmp_path / "out"))
    assert out["source"] == ["m3cot/science", "m3cot/commonsense", "m3cot/mathematics"]
    assert out["id"] == ["m3cot-0", "m3cot-1", "m3cot-2"] and out["solution"] == ["A", "B", "A"]
    assert prompt_text(out[0]["prompt"]).endswith("Choices:\nA. yes\nB. no")


def mathv360k_files(root: Path, folders: dict[str, int]) -> Path:
    """MathV360K's `train_samples_all_tuning.json` with images under `data_images/<source dataset>/images`."""
    records = []
    for folder, count in folders.items():
        (root / "data_images" / folder / "images").mkdir(parents=True)
        for i in range(count):
            (root / "data_images" / folder / "images" / f"{i}.png").write_bytes(png())
            records.append(
                {
                    "id": f"identity_{len(records)}",
                    "image": f"{folder}/images/{i}.png",
                    "conversations": [
                        {"from": "human", "value": f"<image>\nHint: Please answer.\nQuestion: {folder} {i}?"},
                        {"from": "gpt", "value": f"The answer is {i}"},
                    ],
                }
            )
    path = root / "train_samples_all_tuning.json"
    path.write_text(json.dumps(records))
    return path


MATHV360K_DOMAINS = {"domain": "image", "domain_regex": "^([^/]+)/"}


def test_mathv360k_rows_take_their_domain_from_the_image_folder(tmp_path):
    source = mathv360k_files(tmp_path / "raw", {"ScienceQA": 1, "DocVQA": 1, "TabMWP": 1})
    extra = {"source.image_root": str(tmp_path / "raw" / "data_images")}
    load_data(source, tmp_path / "out", "mathv360k", MATHV360K_DOMAINS, **extra)
    out = load_stage_dataset(str(tmp_path / "out"))
    assert out["source"] == ["mathv360k/ScienceQA", "mathv360k/DocVQA", "mathv360k/TabMWP"]
    assert out["id"] == ["identity_0", "identity_1", "identity_2"] and out["solution"] == ["0", "0", "0"]


def mix_data(inputs: list[Path], out: Path, mix: dict, *extra: str) -> dict:
    argv = ["--input.path", str(inputs[0]), "--output.output_dir", str(out), "--mix", json.dumps(mix), *extra]
    argv += ["--stack.more", json.dumps([str(p) for p in inputs[1:]])]
    stage_class = get_stage_class("mix-data")
    return run_stage(stage_class(parse_stage_config(stage_class, argv)))


def test_mix_data_stacks_two_sources_and_draws_exact_quotas_per_domain(tmp_path):
    extra = {"source.image_root": str(tmp_path / "raw" / "data_images")}
    source = mathv360k_files(tmp_path / "raw", {"ScienceQA": 3, "DocVQA": 4, "VizWiz": 2})
    load_data(source, tmp_path / "mathv", "mathv360k", MATHV360K_DOMAINS, **extra)
    load_data(scienceqa_file(tmp_path / "sqa.parquet"), tmp_path / "sqa", "scienceqa")
    quotas = {"mathv360k/ScienceQA": 1, "mathv360k/DocVQA": 1, "mathv360k/VizWiz": 0, "scienceqa": 1}
    metrics = mix_data(
        [tmp_path / "mathv", tmp_path / "sqa"], tmp_path / "mix", {"proportions": quotas, "total": 6}
    )
    out = load_stage_dataset(str(tmp_path / "mix"))
    counts = {name: out["source"].count(name) for name in quotas}
    assert counts == {"mathv360k/ScienceQA": 2, "mathv360k/DocVQA": 2, "mathv360k/VizWiz": 0, "scienceqa": 2}
    assert metrics["rows_in"] == 11 and metrics["rows"] == 6 and metrics["dropped/not_drawn"] == 5
    # MathV360K rows have no options column: stacked beside ScienceQA they get empty ones
    assert all(row["choices"] == [] for row in out if row["source"].startswith("mathv360k/"))
    manifest = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    assert manifest["domains_available"]["mathv360k/DocVQA"] == 4


def test_mix_data_with_a_domain_the_inputs_lack_names_the_domains_they_hold(tmp_path):
    load_data(scienceqa_file(tmp_path / "sqa.parquet"), tmp_path / "sqa", "scienceqa")
    with pytest.raises(DataError, match=r"unknown domain\(s\) \['physics'\].*hold domains \['scienceqa'\]"):
        mix_data([tmp_path / "sqa"], tmp_path / "mix", {"proportions": {"physics": 1, "scienceqa": 1}})


def test_mix_data_leaves_out_the_domains_a_recipe_does_not_name_when_asked(tmp_path):
    extra = {"source.image_root": str(tmp_path / "raw" / "data_images")}
    source = mathv360k_files(tmp_path / "raw", {"ScienceQA": 2, "DocVQA": 2, "VizWiz": 3})
    load_data(source, tmp_path / "mathv", "mathv360k", MATHV360K_DOMAINS, **extra)
    named = {"proportions": {"mathv360k/ScienceQA": 1, "mathv360k/DocVQA": 1}, "total": 4}
    with pytest.raises(DataError, match=r"no weight for domain\(s\) \['mathv360k/VizWiz'\]"):
        mix_data([tmp_path / "mathv"], tmp_path / "refused", named)
    metrics = mix_data([tmp_path / "mathv"], tmp_path / "mix", named, "--stack.drop_unlisted=true")
    assert metrics["rows"] == 4 and metrics["dropped/not_listed"] == 3 and metrics["dropped/not_drawn"] == 0
    assert "mathv360k/VizWiz" not in load_stage_dataset(str(tmp_path / "mix"))["source"]
