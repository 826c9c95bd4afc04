"""The ``benchmark-data`` stage: the decontamination files a pipeline's ``dedup`` stages check against.

Reads each evaluation benchmark named in ``benchmarks.sources`` (its hub id, or a local file or folder
in its official layout: the readers `skywork-rl eval` uses, `eval.loading`) and writes its questions,
one JSON object per line, to ``<output_dir>/<name>_<split>.jsonl`` (``mmmu_validation.jsonl``,
``mathvista_testmini.jsonl``), the format `data_prep.decontaminate.load_benchmark_questions` reads
(``id``, ``question``). A pipeline names them in its dedup stages as
``${stages.<id>.output_dir}/mmmu_validation.jsonl``, so the files are made by the pipeline itself:

    - id: benchmarks
      stage: benchmark-data
      config:
        benchmarks: {sources: {mmmu: MMMU/MMMU, mathvista: AI4Math/MathVista}}

What is written is the bare question text: MathVista's ``query`` adds the same answer-format hint to
every item (MathV360K's training prompts carry it too, so any 8 words of it would mark them all
contaminated); MMMU's ``<image k>`` tags are placeholders for pictures, not words a copy would share.
The stage produces neither a model nor training data (``produces = "benchmarks"``): the stages after
it keep chaining the data made before it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from data_prep.standins import stage_standins
from eval.loading import BenchmarkDataError, hub_allowed, read_records
from skywork_rl.errors import DataError
from skywork_rl.records.atomic import write_atomic
from skywork_rl.scorers import benchmark_names
from skywork_rl.stages.base import RecipeError, Stage

logger = logging.getLogger("skywork_rl")

_IMAGE_TAG = re.compile(r"<image\s*\d*>", re.IGNORECASE)


def _default_sources() -> dict[str, str]:
    return {"mmmu": "MMMU/MMMU", "mathvista": "AI4Math/MathVista"}


@dataclass
class BenchmarkDataOptions:
    """Recipe group ``benchmarks:``."""

    sources: dict[str, str] = field(
        default_factory=_default_sources,
        metadata={
            "help": "Benchmark name (of `skywork-rl eval`: mmmu, mathvista, mathverse, olympiadbench, aime) -> "
            "where to read it: its hub id (MMMU/MMMU, AI4Math/MathVista; the split eval scores) or a local "
            "file or folder in its official layout."
        },
    )


@dataclass
class BenchmarkDataOutput:
    """Recipe group ``output:``."""

    output_dir: str = field(
        default="outputs/data/benchmarks",
        metadata={"help": "Folder of the decontamination files (<name>_<split>.jsonl)."},
    )


@dataclass
class BenchmarkDataConfig:
    benchmarks: BenchmarkDataOptions = field(default_factory=BenchmarkDataOptions)
    output: BenchmarkDataOutput = field(default_factory=BenchmarkDataOutput)


def question_text(record: dict[str, Any]) -> str:
    """A benchmark record's bare question (MMMU's ``<image k>`` tags taken out)."""
    value = record.get("question") or record.get("problem") or ""
    return " ".join(_IMAGE_TAG.sub(" ", str(value)).split())


def read_benchmark_records(name: str, location: str) -> list[dict[str, Any]]:
    """Records of benchmark `name` from its hub id (only its question and id columns of the split eval
    scores, streamed; the hub must be online) or from a local file or folder in its official layout
    (`eval.loading.read_records`)."""
    from eval.benchmarks import get_benchmark  # defers sympy

    spec = get_benchmark(name)
    if Path(location).exists():
        return read_records(location, spec.split)[0]
    if location != spec.hub_id:
        raise DataError(
            f"benchmarks.sources.{name}: {location!r} is neither a local file or folder nor {name}'s hub id "
            f"{spec.hub_id!r}; give one of them"
        )
    if not hub_allowed():
        raise BenchmarkDataError(
            f"benchmarks.sources.{name}: the hub is offline (HF_HUB_OFFLINE=1) and {location!r} is a hub id; "
            f"download {spec.hub_id} ({spec.split}) and set benchmarks.sources.{name} to its local folder"
        )
    return read_hub_questions(spec.hub_id, spec.hub_configs or [None], spec.split, spec.id_field)


def read_hub_questions(
    hub_id: str, configs: list[str | None], split: str, id_field: str
) -> list[dict[str, Any]]:
    """The question and id columns of `split` of each config of a hub dataset, streamed: only that
    split's files are read (not MMMU's test split and its images, gigabytes, beside it)."""
    from datasets import load_dataset

    wanted = ("question", "problem", id_field)
    records: list[dict[str, Any]] = []
    for config in configs:
        dataset = load_dataset(hub_id, config, split=split, streaming=True)
        if dataset.features:  # known columns: read only those (images are never decoded)
            dataset = dataset.select_columns([c for c in wanted if c in dataset.features])
        records += [{k: r[k] for k in wanted if k in r} for r in dataset]
    return records


def benchmark_file_name(name: str) -> str:
    """``mmmu`` -> ``mmmu_validation.jsonl``: the benchmark and the split eval scores."""
    from eval.benchmarks import get_benchmark  # defers sympy

    return f"{name}_{get_benchmark(name).split}.jsonl"


class BenchmarkDataStage(Stage):
    """Write each named benchmark's questions to ``<output_dir>/<name>_<split>.jsonl`` for decontamination."""

    name = "benchmark-data"
    config_class = BenchmarkDataConfig
    produces: ClassVar[str] = "benchmarks"  # not training data: later stages keep chaining the data before it
    output_dir_key: ClassVar[str] = "output.output_dir"
    input_model_key: ClassVar[str | None] = None
    input_data_key: ClassVar[str | None] = None
    distributed: ClassVar[bool] = False
    report_keys = ("questions",)

    @classmethod
    def rehearsal_substitutions(cls, stage_id: str, config: dict[str, Any], rehearsal: Any) -> dict[str, Any]:
        """`skywork-rl run --rehearse`: each benchmark is read from a stand-in in its official layout
        (`data_prep.standins`), so the files are written by this stage's own code as on the real run."""
        return stage_standins(
            cls.name, config, rehearsal.source_dir(stage_id), rehearsal.rows, rehearsal.seed
        )

    def run(self) -> dict[str, float]:
        from eval.benchmarks import get_benchmark  # defers sympy

        sources = self.config.benchmarks.sources or {}
        known = benchmark_names()
        unknown = sorted(set(sources) - set(known))
        if not sources or unknown:
            raise RecipeError(
                f"benchmarks.sources: {'unknown benchmark(s) ' + str(unknown) if unknown else 'empty'}; "
                f"name benchmarks of {known} with their hub id or local path"
            )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        metrics: dict[str, float] = {}
        for name, location in sources.items():
            records = read_benchmark_records(name, str(location))
            id_field = get_benchmark(name).id_field
            lines = [
                json.dumps({"id": str(r.get(id_field, i)), "question": question_text(r)}, ensure_ascii=False)
                for i, r in enumerate(records)
            ]
            if not any(question_text(r) for r in records):
                raise DataError(
                    f"benchmarks.sources.{name} ({location}): {len(records)} records and no question text; "
                    "check the path points at the benchmark's split, in its official layout"
                )
            path = self.output_dir / benchmark_file_name(name)
            write_atomic(path, "".join(line + "\n" for line in lines))
            logger.info("benchmark-data: %s: %d questions from %s -> %s", name, len(lines), location, path)
            metrics[f"questions/{name}"] = float(len(lines))
        metrics["questions"] = sum(metrics.values())
        return metrics
