"""Read a benchmark's local files in their official layouts, or its hub copy when online.

Accepted: a ``.json`` file (a list of records, or an object ``{id: record}`` such as MathVista's
``testmini.json``), ``.jsonl``, ``.parquet``, or a folder (``datasets.save_to_disk`` output, or
parquet/json files inside). Image fields may hold a PIL image, ``{"bytes": ...}`` / ``{"path": ...}``
(the parquet layout) or a path relative to the file (the official JSON layouts).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

from skywork_rl.errors import DataError

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


class BenchmarkDataError(DataError):
    """A benchmark's data could not be found or read; the message names the file and the fix."""


SPLIT_NAMES = ("train", "dev", "val", "validation", "test", "testmini")
_NAME_TOKEN_RE = re.compile(r"[A-Za-z]+")


def split_of(file: Path, root: Path) -> str | None:
    """The split a file inside ``root`` holds, from the first split word in its relative path
    (``Art/validation-00000-of-00001.parquet`` -> ``validation``); None when no word names one."""
    for part in file.relative_to(root).with_suffix("").parts:
        for token in _NAME_TOKEN_RE.findall(part.lower()):
            if token in SPLIT_NAMES:
                return token
    return None


def _files_of_split(path: Path, files: list[Path], split: str | None) -> list[Path]:
    """Only ``split``'s files when the folder holds several splits (a hub snapshot of MMMU has
    ``dev-``, ``validation-`` and ``test-*.parquet`` per subject: concatenating them mixes splits)."""
    splits = {file: split_of(file, path) for file in files}
    found = sorted({s for s in splits.values() if s is not None})
    if len(set(splits.values())) <= 1:
        return files
    chosen = [file for file, s in splits.items() if s == split]
    if split is None or not chosen:
        raise BenchmarkDataError(
            f"benchmark folder {path}: holds several splits ({', '.join(found)}) and none is "
            f"{split!r}; pass the split's file or folder with --benchmark-file NAME=PATH"
        )
    return chosen


def read_records(path: str | Path, split: str | None = None) -> tuple[list[dict[str, Any]], Path]:
    """Records of a local benchmark file or folder, and the folder relative image paths start from.

    A folder holding several splits (file names with ``dev``/``validation``/``test``/``testmini``)
    is read for ``split`` only; without a file of that split it is refused."""
    path = Path(path)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            from datasets import load_from_disk

            return [dict(r) for r in load_from_disk(str(path))], path
        files = sorted(p for p in path.rglob("*") if p.suffix in LOCAL_SUFFIXES)
        if not files:
            raise BenchmarkDataError(f"benchmark folder {path}: no .json/.jsonl/.parquet file inside")
        files = _files_of_split(path, files, split)
        records: list[dict[str, Any]] = []
        for file in files:
            records += read_records(file)[0]
        return records, path
    if not path.is_file():
        raise BenchmarkDataError(f"benchmark file {path}: no such file or folder")
    if path.suffix == ".parquet":
        from datasets import Dataset

        return [dict(r) for r in Dataset.from_parquet(str(path))], path.parent
    text = path.read_text()
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return records, path.parent
    data = json.loads(text)
    if isinstance(data, dict):
        # {id: record} (MathVista testmini.json): keep the key as the id when the record has none
        return [{"_key": key, **record} for key, record in data.items()], path.parent
    if not isinstance(data, list):
        raise BenchmarkDataError(f"benchmark file {path}: expected a JSON list or object of records")
    return data, path.parent


def load_image(value: Any, base: Path, where: str) -> Any:
    """A PIL image from whatever an image field holds; None stays None."""
    from PIL import Image

    if value is None or value == "":
        return None
    if hasattr(value, "convert"):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return Image.open(io.BytesIO(value["bytes"]))
        value = value.get("path")
        if not value:
            return None
    image_path = Path(value)
    if not image_path.is_absolute():
        image_path = base / image_path
    if not image_path.is_file():
        raise BenchmarkDataError(
            f"{where}: image {image_path} not found (paths are relative to the data file)"
        )
    return Image.open(image_path)


def hub_allowed() -> bool:
    """False when the user (or CI) declared the hub offline."""
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True") and os.environ.get(
        "HF_DATASETS_OFFLINE", "0"
    ) not in ("1", "true", "True")


def load_hub(name: str, hub_id: str, split: str, configs: list[str] | None = None) -> list[dict[str, Any]]:
    """Records of a hub dataset (all ``configs`` concatenated, in order); a clear error offline."""
    if not hub_allowed():
        raise BenchmarkDataError(
            f"benchmark {name}: no local file given and the hub is offline (HF_HUB_OFFLINE=1); pass "
            f"--benchmark-file {name}=PATH or --data-dir DIR with {name}.jsonl/.json/.parquet or {name}/"
        )
    from datasets import load_dataset

    records: list[dict[str, Any]] = []
    for config in configs or [None]:
        records += [dict(r) for r in load_dataset(hub_id, config, split=split)]
    return records


def find_local(name: str, data_dir: str | Path | None) -> Path | None:
    """``DIR/<name>.jsonl|.json|.parquet`` or ``DIR/<name>/`` if present."""
    if data_dir is None:
        return None
    base = Path(data_dir)
    for candidate in [base / f"{name}{suffix}" for suffix in LOCAL_SUFFIXES] + [base / name]:
        if candidate.exists():
            return candidate
    return None
