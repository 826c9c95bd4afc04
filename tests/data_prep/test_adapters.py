"""Built-in column mappings on small local samples shaped like each source (images as files, bytes, PIL)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from data_prep.adapters import adapt_dataset
from data_prep.mappings import BUILTIN_MAPPINGS, resolve_mapping
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.data.schema import REQUIRED_COLUMNS, prompt_text
from skywork_rl.errors import DataError


def png(color: str = "red", size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def adapt(location: Path, mapping: str, **kw):
    raw = load_stage_dataset(str(location), "train")
    return adapt_dataset(raw, BUILTIN_MAPPINGS[mapping], **kw)


def image_parts(row) -> int:
    return sum(p["type"] == "image" for m in row["prompt"] for p in m["content"])


def test_mmk12_parquet_with_embedded_image_bytes(tmp_path):
    from datasets import Dataset, Features, Value
    from datasets import Image as HFImage

    features = Features(
        {
            "id": Value("string"),
            "subject": Value("string"),
            "image": HFImage(),
            "question": Value("string"),
            "answer": Value("string"),
        }
    )
    rows = [
        {
            "id": "m1",
            "subject": "math",
            "image": {"bytes": png(), "path": None},
            "question": "<image>Find x.\nA. 1\nB. 2",
            "answer": "B",
        },
        {
            "id": "m2",
            "subject": "physics",
            "image": {"bytes": png("blue"), "path": None},
            "question": "What is the speed?",
            "answer": "3 m/s",
        },
    ]
    Dataset.from_list(rows, features=features).to_parquet(str(tmp_path / "mmk12.parquet"))
    out = adapt(tmp_path / "mmk12.parquet", "mmk12")
    assert set(REQUIRED_COLUMNS) <= set(out.column_names)
    assert out["id"] == ["m1", "m2"] and out["solution"] == ["B", "3 m/s"] and out["source"] == ["mmk12"] * 2
    first = out[0]
    assert image_parts(first) == 1 and len(first["images"]) == 1
    assert first["images"][0].getpixel((0, 0)) == (255, 0, 0)
    assert "<image>" not in prompt_text(first["prompt"]) and prompt_text(first["prompt"]).startswith(
        "Find x."
    )


def test_thinklite_parquet_with_raw_image_struct_and_no_id(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "image": pa.array(
                [{"bytes": png(), "path": None}, {"bytes": png("green"), "path": None}], image_type
            ),
            "problem": ["<image>How many cubes are left?", "<image>\nWhat is the area?"],
            "answer": ["5", "12"],
        }
    )
    pq.write_table(table, tmp_path / "ThinkLite-VL-70k.parquet")
    out = adapt(tmp_path / "ThinkLite-VL-70k.parquet", "thinklite-vl")
    assert out["id"] == ["thinklite-vl-train-0", "thinklite-vl-train-1"]
    assert [prompt_text(r) for r in out["prompt"]] == ["How many cubes are left?", "What is the area?"]
    assert out[1]["images"][0].getpixel((0, 0)) == (0, 128, 0)


def test_geometry3k_save_to_disk_with_pil_images_and_choices(tmp_path):
    from datasets import Dataset, Features, List, Value
    from datasets import Image as HFImage

    features = Features(
        {
            "images": List(HFImage()),
            "problem": Value("string"),
            "answer": Value("string"),
            "id": Value("int64"),
            "choices": List(Value("string")),
            "ground_truth": Value("string"),
        }
    )
    rows = [
        {
            "images": [Image.new("RGB", (20, 10), "white")],
            "problem": "<image>Find x.",
            "answer": "14",
            "id": 7,
            "choices": ["6", "9", "12", "14"],
            "ground_truth": "D",
        }
    ]
    Dataset.from_list(rows, features=features).save_to_disk(str(tmp_path / "geo"))
    out = adapt(tmp_path / "geo", "geometry3k")
    row = out[0]
    assert row["id"] == "7" and row["solution"] == "14" and row["choices"] == ["6", "9", "12", "14"]
    assert prompt_text(row["prompt"]) == "Find x.\nChoices:\nA. 6\nB. 9\nC. 12\nD. 14"
    assert row["images"][0].size == (20, 10)


def test_mathv360k_json_with_image_files_under_image_root(tmp_path):
    root = tmp_path / "data_images"
    (root / "TabMWP" / "images").mkdir(parents=True)
    (root / "TabMWP" / "images" / "1.png").write_bytes(png("blue"))
    records = [
        {
            "id": "identity_1",
            "image": "TabMWP/images/1.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is the total?"},
                {"from": "gpt", "value": "The answer is 42"},
            ],
        },
        {
            "id": "identity_2",
            "image": "TabMWP/images/missing.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhich is larger?"},
                {"from": "gpt", "value": "The answer is B"},
            ],
        },
    ]
    (tmp_path / "train_samples_all_tuning.json").write_text(json.dumps(records))
    out = adapt(tmp_path / "train_samples_all_tuning.json", "mathv360k", image_root=root)
    assert out["solution"] == ["42", "B"] and out["id"] == ["identity_1", "identity_2"]
    assert prompt_text(out[0]["prompt"]) == "What is the total?"
    assert out[0]["images"][0].getpixel((0, 0)) == (0, 0, 255)
    # a missing file: a null image in a row marked for the stage to count and drop, naming the file
    assert out[1]["images"] == [None] and out[1]["_drop_reason"] == "missing_image"
    assert out[1]["_drop_detail"] == f"row 1: no such image file {root / 'TabMWP/images/missing.png'}"


def test_math_jsonl_gold_is_the_last_boxed_answer(tmp_path):
    rows = [
        {
            "problem": "Compute $\\frac{2}{4}$.",
            "solution": "We simplify: $\\boxed{\\frac{1}{2}}$.",
            "level": "Level 1",
            "type": "Algebra",
        }
    ]
    (tmp_path / "math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = adapt(tmp_path / "math.jsonl", "math")
    assert out["solution"] == ["\\frac{1}{2}"]
    assert out[0]["images"] == [] and image_parts(out[0]) == 0


def test_gsm8k_mapping_on_the_real_test_set(shared_data):
    out = adapt(shared_data / "gsm8k" / "test.jsonl", "gsm8k")
    assert len(out) == 1319
    assert out[0]["solution"] == "18" and prompt_text(out[0]["prompt"]).startswith(
        "Janet’s ducks lay 16 eggs"
    )
    assert all(s and "####" not in s for s in out["solution"])
    assert len(set(out["id"])) == 1319


def test_a_mapped_column_missing_from_the_source_names_the_field(tmp_path):
    (tmp_path / "x.jsonl").write_text(json.dumps({"query": "q", "answer": "1"}) + "\n")
    with pytest.raises(
        DataError, match=r"columns.question='question'.*Fix source.columns or pick the right source.mapping"
    ):
        adapt(tmp_path / "x.jsonl", "gsm8k")


def test_recipe_columns_override_a_builtin_and_unknown_names_fail():
    mapping = resolve_mapping("gsm8k", {"question": "query"})
    assert mapping.question == "query" and mapping.gold_from_solution
    with pytest.raises(ValueError, match="unknown built-in mapping 'mmk13'.*give source.columns"):
        resolve_mapping("mmk13")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['questoin'\]"):
        resolve_mapping(None, {"questoin": "q"})


def test_load_data_stage_maps_a_source_and_counts_rows_without_a_question(tmp_path):
    from skywork_rl.stages.base import parse_stage_config, run_stage
    from skywork_rl.stages.registry import get_stage_class

    rows = [{"query": "What is 6 * 7?", "answer": "#### 42"}, {"query": "", "answer": "#### 1"}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = [
        "--input.path",
        str(tmp_path / "mine.jsonl"),
        "--source.mapping",
        "gsm8k",
        "--source.columns",
        json.dumps({"question": "query", "source": "mine"}),
        "--output.output_dir",
        str(tmp_path / "out"),
    ]
    stage_class = get_stage_class("load-data")
    metrics = run_stage(stage_class(parse_stage_config(stage_class, argv)))
    assert metrics["rows"] == 1 and metrics["dropped/missing_question"] == 1
    loaded = load_stage_dataset(str(tmp_path / "out"))
    assert loaded["solution"] == ["42"] and loaded["id"] == ["mine-train-0"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["mapping"]["question"] == "query"
