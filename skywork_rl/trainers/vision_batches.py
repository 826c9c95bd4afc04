"""Text-only rows with sharded parameters: refused before training, because they would hang it.

DeepSpeed ZeRO-3 and FSDP keep every parameter sharded and gather it, on all processes together,
for the forward (and the gradient reduce) of its module. A VLM skips its vision tower when a
micro-batch holds no image. With data that mixes rows with and without images, a process whose
micro-batch happens to be text-only skips the tower's gathers while the others wait in them, and
training hangs without an error (R1V2's `clean` stage keeps text-only rows unless
`clean.require_images: true`). All-image and all-text data are safe: every process then does the same.

Chosen: the SFT, MPO, GRPO and connector trainers check their train and eval data when they are
built, and refuse a mix of image and text-only rows under ZeRO-3 / FSDP, naming the rows and the
fixes. Not chosen: running the tower on a dummy image for text-only micro-batches, its output times
zero. To keep the gathers in the same order on every process the dummy must run where the model
runs its tower, inside each family's forward with each processor's pixel layout (InternVL tiles,
Qwen grids, Idefics3 masks, ...), and its zero must reach the loss along each TRL trainer's own loss
path: a per-family patch of four trainers' forwards, where dropping the rows is one recipe key.
"""

from __future__ import annotations

import os
from typing import Any

from skywork_rl.errors import DataError
from skywork_rl.trainers.init_arguments import bind_trainer_arguments

IMAGE_COLUMNS = ("images", "image")


def text_only_rows(dataset: Any) -> list[int]:
    """Indices of the rows without an image (every row when the data has no image column).

    Read from the Arrow column (list lengths / nulls), so no image is decoded.
    """
    import pyarrow.compute as pc

    column = next((c for c in IMAGE_COLUMNS if c in dataset.column_names), None)
    if column is None:
        return list(range(len(dataset)))
    values = dataset.with_format("arrow")[column]
    if column == "images":
        lengths = pc.fill_null(pc.list_value_length(values), 0).to_pylist()
        return [i for i, n in enumerate(lengths) if n == 0]
    return [i for i, null in enumerate(pc.is_null(values).to_pylist()) if null]


def sharded_parameters(args: Any) -> str | None:
    """The name of the parameter sharding the run uses (ZeRO-3, FSDP), or None."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        return "DeepSpeed ZeRO-3"
    if getattr(args, "fsdp", None) or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true"):
        return "FSDP"
    return None


def refuse_mixed_image_rows(args: Any, datasets: dict[str, Any]) -> None:
    """Raise `DataError` when parameters are sharded and a dataset (recipe key -> data) mixes image and text-only rows."""
    import datasets as hf_datasets

    sharding = sharded_parameters(args)
    if sharding is None:
        return
    for key, dataset in datasets.items():
        parts = dataset.items() if isinstance(dataset, dict) else [(None, dataset)]
        for name, part in parts:
            if not isinstance(part, hf_datasets.Dataset):
                continue  # a stream cannot be checked up front
            rows = text_only_rows(part)
            if rows and len(rows) < len(part):
                where = key if name is None else f"{key}[{name!r}]"
                raise DataError(
                    f"{where}: {len(rows)} of {len(part)} rows have no image (e.g. rows {rows[:5]}) and training "
                    f"runs under {sharding}: a process whose micro-batch is text-only skips the vision tower's "
                    "parameter gathers and the others hang. Drop text-only rows (clean.require_images: true), train "
                    "them in a separate text-only stage, or use ZeRO-2 / DDP"
                )


class VisionBatchGuardMixin:
    """Checks a trainer's train / eval data with `refuse_mixed_image_rows` before the trainer is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = bind_trainer_arguments(self, args, kwargs).arguments
        data = {"data.train": bound.get("train_dataset"), "data.eval": bound.get("eval_dataset")}
        refuse_mixed_image_rows(bound.get("args"), {k: v for k, v in data.items() if v is not None})
        super().__init__(*args, **kwargs)
