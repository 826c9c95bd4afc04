"""What a data stage refuses instead of writing nonsense: unreadable or empty input, missing columns, an
empty result.

Every curation stage reads canonical rows (`skywork_rl/data/schema.py`) except `load-data`, which makes
them. A stage given a dataset without a column it reads would otherwise drop every row for a reason
that hides the cause (no ``solution`` column -> every row ``empty_solution``); a stage whose rows
all go would save an empty dataset and mark itself complete, and the next stage would crash on it.
Both are `DataError`s here, raised before a row is dropped (input) or before anything is saved
(output), with the message naming the dataset, the column or the drop counts, and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skywork_rl.errors import DataError
from skywork_rl.stages.base import COMPLETE_MARKER, STAGE_JSON

# What each canonical column holds, and the `load-data` mapping field that fills it.
_MAPPED_BY = {
    "prompt": "question",
    "solution": "answer",
    "images": "images",
    "id": "id",
    "source": "source",
}


class EmptyOutputError(DataError):
    """Every row of a stage's input was dropped; nothing was saved and the stage is not complete."""


def check_not_unfinished(location: str) -> None:
    """Refuse a folder that a stage wrote but did not finish (its ``stage.json`` without the marker).

    A failed or killed data stage can leave a previous run's rows in its folder; read as input they
    would pass for the stage's result.
    """
    import json

    folder = Path(location)
    record = folder / STAGE_JSON
    if not folder.is_dir() or not record.is_file() or (folder / COMPLETE_MARKER).exists():
        return
    try:
        info = json.loads(record.read_text())
    except ValueError:
        info = {}
    raise DataError(
        f"input.path: {location} is the output of stage {info.get('stage', '?')!r}, which did not finish "
        f"(status {info.get('status', 'unknown')}, see {record}); run that stage again (or point "
        "input.path at a finished output)"
    )


def check_has_rows_on_disk(location: str) -> None:
    """Refuse an empty local input before `datasets` reads it: it fails on both with errors that
    name nothing (an empty data file: ``StopIteration``; a ``save_to_disk`` folder of 0 rows:
    ``IndexError``)."""
    import json

    path = Path(location)
    state = path / "state.json"
    empty_file = path.is_file() and path.stat().st_size == 0
    empty_folder = path.is_dir() and state.is_file() and not json.loads(state.read_text()).get("_data_files")
    if empty_file or empty_folder:
        raise DataError(
            f"input.path ({location}): the dataset has 0 rows; nothing to curate. Point input.path at "
            "a dataset with rows (did the step that wrote it drop every row?)"
        )


def check_not_empty(dataset: Any, where: str) -> None:
    """Refuse an input without rows (nothing to curate; `input.max_rows` must be >= 1)."""
    if len(dataset) == 0:
        raise DataError(
            f"{where}: the dataset has 0 rows; nothing to curate. Check input.path/input.split "
            "(and input.max_rows, which must be >= 1)"
        )


def require_canonical_columns(
    column_names: Sequence[str], needed: Sequence[str], stage: str, where: str
) -> None:
    """Refuse a dataset that lacks a canonical column `stage` reads, naming how `load-data` makes it."""
    missing = [c for c in needed if c not in set(column_names)]
    if not missing:
        return
    fields = ", ".join(f"{c} from source.columns.{_MAPPED_BY.get(c, c)}" for c in missing)
    raise DataError(
        f"{where}: {stage} needs column(s) {missing}, the dataset has {sorted(column_names)}. "
        f"{stage} reads canonical rows: load the source with `skywork-rl stage load-data` and map its "
        f"columns with source.mapping or source.columns ({fields})"
    )


def format_drops(dropped: Mapping[str, int], examples: Mapping[str, str] | None = None) -> str:
    """``empty_solution=3, missing_image=2 (e.g. row 4: no such image file x.png)``."""
    parts = []
    for reason, n in sorted(dropped.items()):
        example = (examples or {}).get(reason)
        parts.append(f"{reason}={n}" + (f" (e.g. {example})" if example else ""))
    return ", ".join(parts) or "none"


def refuse_empty_output(
    stage: str,
    rows_in: int,
    dropped: Mapping[str, int],
    output_dir: str | Path,
    hint: str,
    examples: Mapping[str, str] | None = None,
) -> None:
    """Raise `EmptyOutputError` with the drop counts per reason (called before anything is saved)."""
    raise EmptyOutputError(
        f"{stage}: 0 of {rows_in} rows left (dropped: {format_drops(dropped, examples)}); nothing was "
        f"saved to {output_dir} and the stage is not complete. {hint}"
    )
