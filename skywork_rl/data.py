"""Loading a stage's dataset: a `save_to_disk` folder, a jsonl/json/parquet file, or a hub id.

Stages read data only through here so every stage accepts the same locations and fails the same
way: a clear error naming the recipe key, the location, and the missing columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skywork_rl.schema import require_columns

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
        ds = datasets.load_from_disk(str(path))
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
