"""Loading a stage's dataset: a `save_to_disk` folder, a jsonl/json/parquet file, or a hub id.

Stages read data only through here so every stage accepts the same locations and fails the same
way: a clear error naming the recipe key, the location, and the missing columns.

Inputs are read-only to the project. `datasets` writes the cache file of every ``map``, ``filter``
or ``shuffle`` (TRL's tokenization included) beside the dataset's own arrow files, so reading a
user's ``save_to_disk`` folder would write ``cache-*.arrow`` into it: its fingerprint would change
(the next `run` redoes every stage after it) and a read-only (shared, NFS) folder would crash. So a
``save_to_disk`` folder is read through a mirror of symlinks to its files, made under the stage's
own output folder (`DATASETS_CACHE`, set by `run_stage`; removed when the stage completes; node k > 0 of a
multi-node launch uses its sub-folder ``node<k>``) or, outside
a stage, under a temporary folder removed at exit. The caches land in the mirror; the input is never
written.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skywork_rl.data.schema import require_columns
from skywork_rl.records.fingerprint import input_fingerprint

# The folder inside a stage's output where the datasets it reads are mirrored and cached.
DATASETS_CACHE = ".datasets_cache"
_cache_root: Path | None = None
_temp_root: Path | None = None

_FILE_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}


@dataclass
class DataArguments:
    """Recipe group `data:` — where a stage's training (and eval) rows come from."""

    train: str = field(
        default="",
        metadata={
            "help": "save_to_disk folder, .jsonl/.parquet file, or hub id. In a pipeline, empty means "
            "the previous data stage's output."
        },
    )
    train_split: str = field(
        default="train", metadata={"help": "Split to use when the location holds several."}
    )
    eval: str | None = field(
        default=None, metadata={"help": "Optional eval set location (same forms as train)."}
    )
    eval_split: str = field(default="train", metadata={"help": "Split of the eval location."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only the first N eval rows."})
    shuffle_seed: int | None = field(
        default=None, metadata={"help": "Shuffle the train rows with this seed."}
    )


def load_stage_dataset(location: str, split: str = "train", key: str = "data.train") -> Any:
    """Load one split as a `datasets.Dataset`."""
    import datasets

    if not location:
        raise ValueError(f"{key} is empty: give a dataset folder, a data file or a hub id")
    path = Path(location)
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        ds = datasets.load_from_disk(str(reading_mirror(path)))
    elif path.is_file() and path.suffix in _FILE_FORMATS:
        ds = datasets.load_dataset(_FILE_FORMATS[path.suffix], data_files=str(path))
    elif path.exists() and path.is_dir():
        ds = datasets.load_dataset(str(path))
    elif path.suffix in _FILE_FORMATS or location.startswith((".", "/")):
        raise FileNotFoundError(f"{key}: no such dataset {location!r}")
    else:
        try:
            ds = datasets.load_dataset(location)
        except Exception as exc:  # hub errors come in many types; the location is what the user must fix
            raise FileNotFoundError(
                f"{key}: {location!r} is neither a local dataset nor a reachable hub dataset ({exc})"
            ) from exc
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise KeyError(f"{key}: {location!r} has splits {list(ds)}, not {split!r}")
        ds = ds[split]
    return ds


@contextmanager
def dataset_cache_under(folder: str | Path) -> Iterator[Path]:
    """Mirror (and cache) the datasets read inside this block under `folder` (see the module docstring)."""
    global _cache_root
    previous, _cache_root = _cache_root, Path(folder)
    try:
        yield _cache_root
    finally:
        _cache_root = previous


def _mirror_root() -> Path:
    global _temp_root
    if _cache_root is not None:
        # On a multi-node launch each node mirrors and caches into its own sub-folder: the stage's
        # output folder is on shared storage, and one file made by two nodes is one file written twice
        # (the mirror's rename, each node's main process writing the same `datasets` cache file).
        node = int(os.environ.get("GROUP_RANK", "0") or 0)
        return _cache_root if node == 0 else _cache_root / f"node{node}"
    if _temp_root is None:
        _temp_root = Path(tempfile.mkdtemp(prefix="skywork-rl-datasets-"))
        atexit.register(shutil.rmtree, _temp_root, True)
    return _temp_root


def reading_mirror(path: str | Path) -> Path:
    """A folder of symlinks to the files of the ``save_to_disk`` folder `path` (its ``cache-*`` files
    left out), to load it from: `datasets` then writes its cache files there, never into `path`.

    One mirror per version of `path` (named by its file fingerprint), shared by the processes of a
    launch (the first to finish making it wins; the others use it).
    """
    path = Path(path).resolve()
    version = str(input_fingerprint(str(path))).rsplit(":", 1)[-1]
    root = _mirror_root()
    target = root / f"{path.name}-{version}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for folder, _dirs, files in os.walk(path):
        relative = Path(folder).relative_to(path)
        (tmp / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            if not name.startswith("cache-"):
                os.symlink(Path(folder) / name, tmp / relative / name)
    try:
        os.rename(tmp, target)
    except OSError:  # another process of this launch made it first
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():
            raise
    return target


def load_train_eval(args: DataArguments, needed: tuple[str, ...]) -> tuple[Any, Any]:
    """The train (and optional eval) datasets of a stage, checked for the columns it needs."""
    train = load_stage_dataset(args.train, args.train_split, "data.train")
    require_columns(train.column_names, needed, f"data.train ({args.train})")
    if args.shuffle_seed is not None:
        train = train.shuffle(seed=args.shuffle_seed)
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    evaluation = None
    if args.eval:
        evaluation = load_stage_dataset(args.eval, args.eval_split, "data.eval")
        require_columns(evaluation.column_names, needed, f"data.eval ({args.eval})")
        if args.max_eval_samples is not None:
            evaluation = evaluation.select(range(min(args.max_eval_samples, len(evaluation))))
    return train, evaluation
