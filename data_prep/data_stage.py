"""What every data stage shares: reading `input:` (refusing what cannot be read as asked), the
output guard, the input and output refusals (`data_prep/refusals.py`), the manifest.

Data stages run as plain processes (``distributed = False``): curation is I/O and generation
bound, and the generation backend (vLLM) does its own parallelism.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from data_prep.manifest import Manifest, begin_replace, guard_output, save_dataset
from data_prep.refusals import (
    check_has_rows_on_disk,
    check_not_empty,
    check_not_unfinished,
    refuse_empty_output,
    require_canonical_columns,
)
from data_prep.stage_config import DataInput, GeneratorModel
from data_prep.standins import stage_standins
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.errors import DataError
from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.stages.base import Stage
from skywork_rl.stages.rehearsal import RehearsalError, get_dotted


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def load_input(inp: DataInput) -> Any:
    """The `input:` dataset; what cannot be read as asked is a `DataError` naming ``input.*``."""
    from datasets.exceptions import DatasetGenerationError

    check_not_unfinished(inp.path)
    check_has_rows_on_disk(inp.path)
    if inp.max_rows is not None and inp.max_rows < 1:
        raise DataError(f"input.max_rows must be >= 1 (or unset for every row), got {inp.max_rows}")
    if inp.split != "train" and (Path(inp.path) / "dataset_info.json").is_file():
        raise DataError(
            f"input.split: {inp.path} holds one dataset without splits, so split {inp.split!r} cannot be "
            "read from it; leave input.split unset"
        )
    try:
        ds = load_stage_dataset(inp.path, inp.split, key="input.path")
    except DataError:
        raise
    except (FileNotFoundError, KeyError, ValueError) as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        raise DataError(
            message if message.startswith("input.") else f"input.path ({inp.path}): {message}"
        ) from exc
    except DatasetGenerationError as exc:  # the file's own error (e.g. a JSON parse error) is its cause
        raise DataError(f"input.path: cannot read {inp.path} ({exc.__cause__ or exc})") from exc
    if inp.max_rows is not None:
        ds = ds.select(range(min(inp.max_rows, len(ds))))
    return ds


class LazyBackend:
    """The model's generation backend, built on the first `generate` call: a run whose chunks are all
    saved already never loads the model."""

    def __init__(self, model: GeneratorModel) -> None:
        self.model = model
        self._backend: Any = None

    def generate(
        self, rows: Any, *, sampling: SamplingParams | None = None, num_generations: int = 1
    ) -> list[list[str]]:
        if self._backend is None:
            self._backend = self.model.build()
        return self._backend.generate(rows, sampling=sampling, num_generations=num_generations)


class DataStage(Stage):
    """What the data stages share: chaining keys, the output guard, the input and output refusals, the
    manifest."""

    produces: ClassVar[str] = "data"
    output_dir_key: ClassVar[str] = "output.output_dir"
    input_model_key: ClassVar[str | None] = None
    input_data_key: ClassVar[str | None] = "input.path"
    distributed: ClassVar[bool] = False
    # `skywork-rl run --force` re-runs a finished data stage by letting it replace its output.
    force_overrides: ClassVar[dict[str, Any]] = {"output": {"overwrite": True}}
    report_keys: ClassVar[tuple[str, ...]] = ("rows_in", "rows")  # the closing report of `skywork-rl run`
    # Set by `start`: a finished output is being replaced (generation stages then discard their chunks).
    replacing: bool = False
    # Canonical columns the stage reads; a dataset without one is refused before a row is dropped.
    required_columns: ClassVar[tuple[str, ...]] = ("prompt", "solution")
    # What the user can change when every row was dropped (ends the `EmptyOutputError` message).
    empty_hint: ClassVar[str] = ""

    @classmethod
    def rehearsal_substitutions(cls, stage_id: str, config: dict[str, Any], rehearsal: Any) -> dict[str, Any]:
        """`skywork-rl run --rehearse`: a source this stage loads becomes its stand-in in the source's own
        layout (`data_prep.standins`), the generating model (policy or teacher) a tiny scripted one;
        data a stage reads must otherwise come from the pipeline."""
        subs = dict(
            stage_standins(cls.name, config, rehearsal.source_dir(stage_id), rehearsal.rows, rehearsal.seed)
        )
        data = get_dotted(config, cls.input_data_key) if cls.input_data_key else None
        if data and cls.input_data_key not in subs and not rehearsal.is_internal(data):
            raise RehearsalError(
                f"stage {stage_id}: {cls.input_data_key} {data!r} is not made by the pipeline and this stage has "
                "no stand-in for it; load it with a load-data stage and chain its output"
            )
        if cls.input_model_key == "model.name_or_path":
            subs.update(rehearsal.model_substitution(config, "model.name_or_path", "policy"))
        return subs

    @property
    def input_where(self) -> str:
        return f"input.path ({self.config.input.path})"

    def start(self, check: Callable[[Any], None] | None = None) -> tuple[Any, Manifest]:
        """Check the output may be written (before anything in the folder changes), read the input,
        refuse it if it is empty or lacks a `required_columns` column, run `check` on it (a stage's
        own input checks), open the manifest. A failure in any of these leaves the folder as it was."""
        self.replacing = guard_output(self.output_dir, self.config.output.overwrite)
        manifest = Manifest(step=self.name, config=config_dict(self.config))
        with manifest.timed("load"):
            dataset = load_input(self.config.input)
        check_not_empty(dataset, self.input_where)
        require_canonical_columns(dataset.column_names, self.required_columns, self.name, self.input_where)
        if check is not None:
            check(dataset)
        if self.replacing:
            begin_replace(self.output_dir)
        manifest.rows_in = len(dataset)
        return dataset, manifest

    def finish(self, dataset: Any, manifest: Manifest, hint: str | None = None) -> dict[str, float]:
        """Save the output and its manifest, or raise `EmptyOutputError` (nothing saved) when no row is left."""
        if len(dataset) == 0:
            refuse_empty_output(
                self.name,
                manifest.rows_in,
                manifest.dropped,
                self.output_dir,
                hint or self.empty_hint,
                manifest.extra.get("drop_examples"),
            )
        save_dataset(dataset, self.output_dir, manifest)
        return manifest.metrics()
