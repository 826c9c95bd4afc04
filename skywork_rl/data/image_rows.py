"""Rows whose image does not decode, named when training trips over one.

`datasets` decodes images lazily, when the trainer's data loader reads a batch, so a corrupt image
stops training somewhere in its first epoch with a PIL traceback that names neither the row nor the
file. `raise_for_undecodable_images` turns such a failure into one `DataError` line: the data key,
the rows (index and ``id``) whose images fail, and the fix. The scan runs only after the failure (a
dataset is not decoded twice on the way in), with the cleaning step's own test (`data_prep.images.
decode_image`: open, verify, load), so ``skywork-rl stage clean`` drops exactly these rows, counted
as ``corrupt_image``.
"""

from __future__ import annotations

import io
import traceback
from typing import Any

from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.errors import DataError

SHOWN_ROWS = 5


def is_image_decode_error(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, was raised inside PIL (an image that did not
    decode: unidentified, truncated, a decompression bomb)."""
    from PIL import Image, UnidentifiedImageError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (UnidentifiedImageError, Image.DecompressionBombError)):
            return True
        frames = traceback.extract_tb(current.__traceback__) if current.__traceback__ else []
        if frames and "/PIL/" in frames[-1].filename.replace("\\", "/"):
            return True
        current = current.__cause__ or current.__context__
    return False


def image_error(value: Any) -> str | None:
    """Why one undecoded image value (``{"bytes", "path"}``) does not decode, or None when it does."""
    from PIL import Image

    if value is None:
        return "no image"
    data = value.get("bytes") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else None
    try:
        if not data and path:
            with open(path, "rb") as file:
                data = file.read()
        if not data:
            return "no image bytes"
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # truncation and bad checksums a lazy open would miss
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"{type(exc).__name__}: {str(exc).split(' <_io.')[0]}"
    return None


def undecodable_image_rows(dataset: Any) -> list[tuple[int, Any, str]]:
    """``(row index, row id or None, reason)`` of every row of `dataset` with an image that does not decode."""
    if "images" not in dataset.column_names:
        return []
    has_id = "id" in dataset.column_names
    columns = ["images", "id"] if has_id else ["images"]
    bad = []
    index = 0
    # Arrow batches: the images' stored bytes, never decoded by `datasets`, and no cache file written
    # beside the user's data (a cast would write one).
    for batch in dataset.select_columns(columns).with_format("arrow").iter(batch_size=256):
        images = batch.column("images").to_pylist()
        ids = batch.column("id").to_pylist() if has_id else [None] * len(images)
        for row_images, row_id in zip(images, ids, strict=True):
            for value in row_images if isinstance(row_images, list) else [row_images]:
                reason = image_error(value)
                if reason is not None:
                    bad.append((index, row_id, reason))
                    break
            index += 1
    return bad


def raise_for_undecodable_images(exc: BaseException, locations: dict[str, tuple[str, str]]) -> None:
    """If `exc` is an image that did not decode, raise a `DataError` naming the rows of each
    ``{recipe key: (location, split)}`` whose images fail; otherwise return (the caller re-raises)."""
    if not is_image_decode_error(exc):
        return

    found = []
    for key, (location, split) in locations.items():
        bad = undecodable_image_rows(load_stage_dataset(location, split, key))
        if bad:
            rows = ", ".join(
                f"row {i}" + (f" (id {row_id!r})" if row_id is not None else "") + f": {reason}"
                for i, row_id, reason in bad[:SHOWN_ROWS]
            )
            more = f" and {len(bad) - SHOWN_ROWS} more" if len(bad) > SHOWN_ROWS else ""
            found.append(
                f"{key} ({location}): {len(bad)} row(s) with an image that does not decode: {rows}{more}"
            )
    if not found:
        return  # the failing image is not in the stage's data (a processor's own file?): keep the traceback
    raise DataError(
        "; ".join(found) + ". `skywork-rl stage clean` (input.path: that data) drops exactly these rows "
        "(counted as corrupt_image); or replace their images"
    ) from exc
