"""The ``load-data`` stage: a public or local source mapped into canonical rows.

The mapping is settled on the source before a row is mapped: its image column is found when the
recipe names none (a source's pictures are never dropped unasked; ``source.columns: {images: null}``
loads text-only rows and says so), and a mapped column the source lacks, a missing gold-answer
column or repeated ids fail naming the ``source.columns`` field to set. Rows without a question or
with an image that cannot be read are counted per reason, with one example each in the manifest.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from data_prep.adapters import DROP, DROP_DETAIL, adapt_dataset, check_unique_ids, prepare_mapping
from data_prep.data_stage import DataStage
from data_prep.mappings import resolve_mapping
from data_prep.stage_config import LoadDataConfig

logger = logging.getLogger("skywork_rl")


class LoadDataStage(DataStage):
    """Load a public or local dataset and map its columns into the canonical schema."""

    name = "load-data"
    config_class = LoadDataConfig
    input_data_key = None  # the source is named by the recipe, never chained from a previous stage
    required_columns = ()  # a raw source: the mapping says which columns it needs (`_check_source`)
    empty_hint = (
        "Check source.mapping / source.columns (the question column must hold text) and, for "
        "missing_image, where relative image paths are resolved (source.image_root)."
    )

    def run(self) -> dict[str, float]:
        cfg: LoadDataConfig = self.config
        # settled on the source by `_check_source` (called by `start`, before anything is written)
        self.mapping = resolve_mapping(cfg.source.mapping, cfg.source.columns, where="source")
        self.ignored_images: list[str] = []
        raw, manifest = self.start(check=self._check_source)
        if self.ignored_images:
            logger.warning(
                "load-data: %s: ignoring image column(s) %s as the mapping asks (source.columns.images: null); "
                "rows are text-only",
                self.input_where,
                self.ignored_images,
            )
            manifest.extra["ignored_image_columns"] = self.ignored_images
        image_root = cfg.source.image_root or _default_image_root(cfg.input.path)
        with manifest.timed("adapt"):
            mapped = adapt_dataset(
                raw,
                self.mapping,
                split=cfg.input.split,
                image_root=image_root,
                system_prompt=cfg.source.system_prompt,
                where=self.input_where,
                num_proc=cfg.output.num_proc,
            )
            examples: dict[str, str] = {}
            for reason, detail in zip(mapped[DROP], mapped[DROP_DETAIL], strict=True):
                if reason:
                    manifest.drop(reason)
                    examples.setdefault(reason, detail)
            kept = mapped.filter(lambda r: not r, input_columns=[DROP]).remove_columns([DROP, DROP_DETAIL])
        manifest.extra["mapping"] = dataclasses.asdict(self.mapping)
        if self.mapping.images:
            manifest.extra["image_root"] = str(image_root) if image_root else None
        if examples:
            manifest.extra["drop_examples"] = examples
        return self.finish(kept, manifest)

    def _check_source(self, raw: Any) -> None:
        """Settle the mapping on this source (its image column) and refuse one it cannot run on."""
        self.mapping, self.ignored_images = prepare_mapping(raw.column_names, self.mapping, self.input_where)
        check_unique_ids(raw, self.mapping, self.input_where)


def _default_image_root(location: str) -> Path | None:
    """Relative image paths of a local source are under its folder (a data file's own folder)."""
    path = Path(location)
    if path.is_file():
        return path.parent
    return path if path.is_dir() else None
