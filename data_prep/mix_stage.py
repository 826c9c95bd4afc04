"""The ``mix-data`` stage: several canonical datasets stacked into one and balanced by domain.

Each data stage reads one dataset, so sources meet here: R1V3's cold start distils about 20K science
questions drawn from more than one public set, and its connector set is 10K rows over 20 domains,
picked per domain before the (expensive) trace generation. The rows of ``input.path`` and
``stack.more`` are stacked (columns must agree; the optional ``choices`` column is filled with
``[]`` where a source has none), grouped by ``stack.domain_column`` (the canonical ``source``:
``<mapping>/<domain>`` when the load-data mapping names a domain column), and drawn with
`skywork_rl.data.mixing.mix_domains`: ``mix.caps`` bound a domain, ``mix.total`` with ``mix.proportions``
gives exact quotas (a domain with proportion 0 is left out). Without ``mix`` options every row is kept.
``stack.drop_unlisted`` leaves out the domains the ``mix`` options do not name (a source with more
domains than a recipe uses), counting them; a named domain the inputs lack is always an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data_prep.data_stage import DataStage, load_input
from data_prep.refusals import check_not_empty, require_canonical_columns
from data_prep.stage_config import DataInput, DataOutput, ReadsInput, output_group
from skywork_rl.data.mixing import MixingError, MixOptions, mix_domains
from skywork_rl.errors import DataError

_OPTIONAL_LIST_COLUMNS = ("choices",)


@dataclass
class StackOptions:
    """Recipe group ``stack:`` — the datasets stacked after ``input.path``, and the domain column."""

    more: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Further datasets (earlier stages' outputs, files or hub ids) stacked after input.path."
        },
    )
    domain_column: str = field(
        default="source", metadata={"help": "Column naming each row's domain (what mix.* options key on)."}
    )
    drop_unlisted: bool = field(
        default=False,
        metadata={
            "help": "Leave out (and count as not_listed) the domains that mix.proportions (or mix.caps) does "
            "not name, instead of refusing them; a named domain the inputs lack is still an error."
        },
    )


@dataclass
class MixDataConfig(ReadsInput):
    stack: StackOptions = field(default_factory=StackOptions)
    mix: MixOptions = field(default_factory=MixOptions)
    output: DataOutput = output_group("outputs/data/mix")


def stack_datasets(parts: list[tuple[str, Any]]) -> Any:
    """Concatenate `(where, dataset)` parts whose columns agree; an optional list column missing from
    some parts is added to them empty. A part with other columns is a `DataError` naming it."""
    from datasets import List, Value, concatenate_datasets

    columns = {c for _, ds in parts for c in ds.column_names}
    aligned = []
    for where, ds in parts:
        for column in _OPTIONAL_LIST_COLUMNS:
            if column in columns and column not in ds.column_names:
                ds = ds.add_column(column, [[] for _ in range(len(ds))], feature=List(Value("string")))
        missing = sorted(columns - set(ds.column_names))
        if missing:
            first = parts[0][0]
            raise DataError(
                f"{where}: has no column(s) {missing} that other stacked datasets have ({first} ...); stack "
                "datasets of one kind (all load-data outputs, or all distill outputs)"
            )
        aligned.append(ds.select_columns(sorted(columns)))
    reference = aligned[0].features
    cast = [ds if ds.features == reference else ds.cast(reference) for ds in aligned]
    return concatenate_datasets(cast)


class MixDataStage(DataStage):
    """Stack canonical datasets and balance them by domain (caps, exact quotas, or everything)."""

    name = "mix-data"
    config_class = MixDataConfig
    required_columns = ("prompt", "solution")
    empty_hint = "Check mix.caps / mix.proportions / mix.total against the domains the inputs hold."

    def run(self) -> dict[str, float]:
        cfg: MixDataConfig = self.config
        first, manifest = self.start()
        parts = [(self.input_where, first)]
        for i, location in enumerate(cfg.stack.more):
            where = f"stack.more[{i}] ({location})"
            ds = load_input(DataInput(path=location))
            check_not_empty(ds, where)
            require_canonical_columns(ds.column_names, self.required_columns, self.name, where)
            parts.append((where, ds))
        with manifest.timed("stack"):
            stacked = stack_datasets(parts)
        manifest.rows_in = len(stacked)
        column = cfg.stack.domain_column
        if column not in stacked.column_names:
            raise DataError(
                f"stack.domain_column: the inputs have no column {column!r} (they have {stacked.column_names})"
            )
        values = [str(v) for v in stacked[column]]
        names = sorted(set(values))
        listed = set(cfg.mix.proportions or cfg.mix.caps or names)
        if cfg.stack.drop_unlisted:
            unlisted = [i for i, v in enumerate(values) if v not in listed]
            manifest.drop("not_listed", len(unlisted))
            manifest.extra["domains_not_listed"] = sorted(set(names) - listed)
        kept = [n for n in names if n in listed or not cfg.stack.drop_unlisted]
        domains = {name: stacked.select([i for i, v in enumerate(values) if v == name]) for name in kept}
        with manifest.timed("mix"):
            try:
                result = mix_domains(domains, cfg.mix)
            except MixingError as exc:
                raise DataError(f"{exc} (the inputs hold domains {names})") from exc
        offered = sum(len(ds) for ds in domains.values())
        manifest.drop("not_drawn", max(0, offered - len(result.dataset)))
        manifest.extra.update(domains_available=result.available, domains_drawn=result.counts)
        metrics = self.finish(result.dataset, manifest)
        return {**metrics, **result.as_metrics()}
