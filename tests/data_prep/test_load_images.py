"""`load-data` never drops a source's pictures silently: an `image`/`images` column is mapped by default
in every form sources ship it, ignoring it is said in one line, and a bad image is counted or named."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from skywork_rl.errors import DataError
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class

COLORS = ["red", "blue"]


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def run(stage: str, *argv: str) -> dict[str, float]:
    stage_class = get_stage_class(stage)
    return run_stage(stage_class(parse_stage_config(stage_class, list(argv))))


def write_source(folder: Path, form: str) -> Path:
    """Two rows whose pictures come as `form`: a path beside the data file, a list of paths, raw bytes
    (parquet binary), or PIL images (a `datasets.Image` column saved to disk)."""
    from datasets import Dataset, Features, List, Value
    from datasets import Image as HFImage

    folder.mkdir()
    for color in COLORS:
        (folder / f"{color}.png").write_bytes(png(color))
    text = {c: {"question": f"What color is picture {i}?", "answer": c} for i, c in enumerate(COLORS)}
    if form in ("path", "list_of_paths"):
        column = "image" if form == "path" else "images"
        rows = [{**t, column: f"{c}.png" if form == "path" else [f"{c}.png"]} for c, t in text.items()]
        path = folder / "raw.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path
    if form == "bytes":
        path = folder / "raw.parquet"
        Dataset.from_list([{**t, "image": png(c)} for c, t in text.items()]).to_parquet(str(path))
        return path
    features = Features({"question": Value("string"), "answer": Value("string"), "images": List(HFImage())})
    rows = [{**t, "images": [Image.new("RGB", (8, 8), c)]} for c, t in text.items()]
    Dataset.from_list(rows, features=features).save_to_disk(str(folder / "saved"))
    return folder / "saved"


@pytest.mark.parametrize("form", ["path", "list_of_paths", "bytes", "pil"])
def test_load_data_keeps_images_from_an_unmapped_image_column(tmp_path, form, monkeypatch):
    import datasets

    source = write_source(tmp_path / "src", form)
    monkeypatch.chdir(tmp_path)  # relative paths resolve beside the data file, not in the working folder
    out = tmp_path / "out"
    metrics = run("load-data", "--input.path", str(source), "--output.output_dir", str(out))
    assert metrics["rows"] == 2
    loaded = datasets.load_from_disk(str(out))
    assert [row["images"][0].getpixel((0, 0)) for row in loaded] == [(255, 0, 0), (0, 0, 255)]
    assert all(row["prompt"][0]["content"][0]["type"] == "image" for row in loaded)


def test_load_data_with_images_null_says_in_one_line_that_it_ignored_them(tmp_path, caplog):
    import datasets

    source = write_source(tmp_path / "src", "path")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="skywork_rl"):
        run(
            "load-data",
            "--input.path",
            str(source),
            "--source.columns",
            "{images: null}",
            "--output.output_dir",
            str(out),
        )
    said = [r.getMessage() for r in caplog.records if "ignoring image column" in r.getMessage()]
    assert said == [
        f"load-data: input.path ({source}): ignoring image column(s) ['image'] as the mapping asks (source.columns.images: null); "
        "rows are text-only"
    ]
    assert datasets.load_from_disk(str(out))["images"] == [[], []]
    assert json.loads((out / "manifest.json").read_text())["ignored_image_columns"] == ["image"]


def _load_raw(tmp_path: Path) -> dict:
    """`load-data` of tmp_path/raw.jsonl into tmp_path/out."""
    return run(
        "load-data", "--input.path", str(tmp_path / "raw.jsonl"), "--output.output_dir", str(tmp_path / "out")
    )


def test_a_source_with_both_image_and_images_columns_must_say_which(tmp_path):
    (tmp_path / "raw.jsonl").write_text(
        json.dumps({"question": "q", "answer": "1", "image": "a", "images": ["b"]}) + "\n"
    )
    with pytest.raises(DataError, match=r"both 'images' and 'image' columns; set source.columns.images"):
        _load_raw(tmp_path)


def test_a_corrupt_image_is_passed_by_load_data_and_counted_and_dropped_by_clean(tmp_path):
    import datasets

    source = write_source(tmp_path / "src", "path")
    (tmp_path / "src" / "blue.png").write_bytes(png("blue")[:40])  # truncated: a PNG header, no pixels
    loaded, clean = tmp_path / "loaded", tmp_path / "clean"
    assert run("load-data", "--input.path", str(source), "--output.output_dir", str(loaded))["rows"] == 2
    metrics = run("clean", "--input.path", str(loaded), "--output.output_dir", str(clean))
    assert metrics["rows"] == 1 and metrics["dropped/corrupt_image"] == 1
    assert datasets.load_from_disk(str(clean))["solution"] == ["red"]


def test_missing_image_files_are_counted_by_load_data_naming_the_file(tmp_path):
    source = write_source(tmp_path / "src", "path")
    (tmp_path / "src" / "blue.png").unlink()
    out = tmp_path / "out"
    metrics = run("load-data", "--input.path", str(source), "--output.output_dir", str(out))
    assert metrics["rows"] == 1 and metrics["dropped/missing_image"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["drop_examples"] == {
        "missing_image": f"row 1: no such image file {tmp_path / 'src' / 'blue.png'}"
    }
    assert manifest["image_root"] == str(tmp_path / "src")


def test_an_image_column_holding_no_kind_of_image_is_an_error_naming_the_row(tmp_path):
    rows = [{"question": "q", "answer": "1", "image": 7}]
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        DataError, match=r"row 0, column 'image' \(source.columns.images\): cannot read an image from a int"
    ):
        _load_raw(tmp_path)
