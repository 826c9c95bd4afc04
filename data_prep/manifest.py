"""The record every curation step leaves next to its output: what came in, what went out, and why.

A curated dataset is only as trustworthy as the account of what was dropped from it. Each data
stage writes ``manifest.json`` beside its ``save_to_disk`` output: rows in and out, rows dropped
per reason, the resolved config and per-phase timings. Reading the manifests of a pipeline in
order explains every row that did not reach training.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skywork_rl.records.atomic import write_atomic
from skywork_rl.stages.base import StageRefused

MANIFEST = "manifest.json"


class OutputExistsError(FileExistsError, StageRefused):
    """A finished dataset is already at the output path and the recipe did not ask to overwrite it.

    A `StageRefused`: raised before the stage touches its folder, so `run_stage` keeps the finished
    stage's marker and ``stage.json`` as they were.
    """


@dataclass
class Manifest:
    """Counts and timings of one curation step; `write` puts them in ``manifest.json``."""

    step: str
    config: dict[str, Any] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    timings_s: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count `n` rows dropped for `reason` (a short snake_case key, e.g. ``corrupt_image``)."""
        self.dropped[reason] += n

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Time a phase (accumulates when a phase runs more than once)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_s[phase] = round(self.timings_s.get(phase, 0.0) + time.perf_counter() - start, 3)

    def metrics(self) -> dict[str, float]:
        """The numbers a stage returns as its final metrics (``rows``, ``dropped/<reason>`` ...)."""
        out: dict[str, float] = {"rows_in": float(self.rows_in), "rows": float(self.rows_out)}
        for reason, n in sorted(self.dropped.items()):
            out[f"dropped/{reason}"] = float(n)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": sum(self.dropped.values()),
            "timings_s": self.timings_s,
            "config": self.config,
            **self.extra,
        }

    def write(self, output_dir: str | Path) -> Path:
        """Write ``manifest.json`` into `output_dir` atomically (readers never see a torn file)."""
        path = Path(output_dir) / MANIFEST
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(self.to_dict(), indent=2, default=str))
        return path


def has_finished_output(output_dir: str | Path) -> bool:
    """Whether `output_dir` holds a dataset a previous run finished (saved data plus its manifest)."""
    path = Path(output_dir)
    return (path / MANIFEST).exists() and (path / "dataset_info.json").exists()


def guard_output(output_dir: str | Path, overwrite: bool, key: str = "output.output_dir") -> bool:
    """Refuse to replace a finished output unless the recipe sets ``output.overwrite: true``.

    Reads only, so a refused stage leaves its folder as it was. Returns whether a finished output is
    about to be replaced (stages then discard work saved for it, see `begin_replace`).
    """
    finished = has_finished_output(output_dir)
    if finished and not overwrite:
        raise OutputExistsError(
            f"{key}: {output_dir} already holds a finished dataset (manifest.json + dataset_info.json); "
            "set output.overwrite: true (or `skywork-rl run --force`) to replace it, or choose another "
            "output_dir"
        )
    return finished


def begin_replace(output_dir: str | Path) -> None:
    """Mark a finished output as being replaced: without its manifest it no longer looks finished, so
    a replacing run that is killed resumes its own saved chunks next time instead of discarding them."""
    (Path(output_dir) / MANIFEST).unlink(missing_ok=True)


def save_dataset(dataset: Any, output_dir: str | Path, manifest: Manifest) -> None:
    """Save with `datasets.save_to_disk`, then the manifest last (its presence marks the output finished)."""
    output_dir = Path(output_dir)
    stale = output_dir / MANIFEST
    if stale.exists():
        stale.unlink()  # an interrupted overwrite must not look finished
    manifest.rows_out = len(dataset)
    with manifest.timed("save"):
        dataset.save_to_disk(str(output_dir))
    manifest.write(output_dir)
