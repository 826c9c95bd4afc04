"""Recipe groups shared by the data stages (`input:`, `output:`, `source:`, `model:`) and their configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data_prep.cleaning import CleanOptions
from data_prep.decontaminate import DecontaminateOptions
from data_prep.dedup import DedupOptions
from data_prep.distill import DistillOptions
from data_prep.pass_rate import PassRateOptions
from skywork_rl.generation.backends import make_backend


@dataclass
class DataInput:
    """Recipe group `input:` — the dataset a step reads."""

    path: str = field(
        default="",
        metadata={
            "help": "save_to_disk folder, .jsonl/.json/.parquet/.arrow file, or hub id. In a pipeline, empty "
            "means the previous data stage's output."
        },
    )
    split: str = field(default="train", metadata={"help": "Split to read when the location has several."})
    max_rows: int | None = field(default=None, metadata={"help": "Read only the first N rows."})


@dataclass
class DataOutput:
    """Recipe group `output:` — where a step saves (``save_to_disk`` + ``manifest.json``)."""

    output_dir: str = field(default="outputs/data", metadata={"help": "Output folder."})
    overwrite: bool = field(
        default=False, metadata={"help": "Replace a finished output (otherwise the step refuses to run)."}
    )
    num_proc: int | None = field(default=None, metadata={"help": "Processes for datasets.map (None: one)."})


@dataclass
class SourceOptions:
    """Recipe group `source:` — how a source's columns map onto the canonical schema."""

    mapping: str | None = field(
        default=None,
        metadata={
            "help": "Built-in mapping: mmk12, thinklite-vl, geometry3k, mathv360k, gsm8k, math, scienceqa, sciq, m3cot."
        },
    )
    columns: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "Mapping fields to set or override, e.g. {question: query, images: img} (see ColumnMapping). "
            "Without images, a source's `images`/`image` column is mapped; {images: null} loads text-only rows."
        },
    )
    image_root: str | None = field(
        default=None,
        metadata={
            "help": "Folder that relative image paths are under (MathV360K: data_images/). Default: the "
            "folder of a local input.path (a data file's own folder)."
        },
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "System message added to every prompt."}
    )


@dataclass
class GeneratorModel:
    """Recipe group `model:` — the policy (pass-rate filter) or teacher (distill) that generates."""

    name_or_path: str = field(
        default="",
        metadata={"help": "Checkpoint folder or hub id. In a pipeline, empty means the latest model."},
    )
    backend: str = field(
        default="transformers",
        metadata={"help": "transformers (CPU/1 GPU), vllm, or a user backend class as module:Class."},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run the checkpoint's own modelling code."}
    )
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate call (transformers backend)."})
    backend_kwargs: dict[str, Any] | None = field(
        default=None,
        metadata={"help": "Extra keyword arguments for the backend (e.g. vLLM's tensor_parallel_size)."},
    )

    def build(self) -> Any:
        """The generation backend: `skywork_rl.generation.backends.make_backend` for ``transformers``/``vllm``, or a
        user class named ``module:Class`` (built as ``Class(name_or_path, **backend_kwargs)``; it must
        implement `skywork_rl.generation.protocol.GenerationBackend`, e.g. an API-served teacher)."""
        import importlib

        if not self.name_or_path:
            raise ValueError("model.name_or_path is empty: give the checkpoint that generates the rollouts")
        kwargs = dict(self.backend_kwargs or {})
        if ":" in self.backend:
            module_name, _, class_name = self.backend.partition(":")
            try:
                backend_class = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError) as exc:
                raise ImportError(f"model.backend: cannot import {self.backend!r} ({exc})") from exc
            return backend_class(self.name_or_path, **kwargs)
        kwargs.setdefault("trust_remote_code", self.trust_remote_code)
        if self.backend == "transformers":
            kwargs.setdefault("batch_size", self.batch_size)
        return make_backend(self.backend, self.name_or_path, **kwargs)


def output_group(output_dir: str) -> Any:
    """A data stage config's ``output:`` field (its last), defaulting to ``output_dir``."""
    return field(default_factory=lambda: DataOutput(output_dir=output_dir))


@dataclass
class ReadsInput:
    """A data stage config's first group, ``input:``; a subclass adds its own groups, then ``output:``."""

    input: DataInput = field(default_factory=DataInput)


@dataclass
class GeneratesWithModel(ReadsInput):
    """``input:`` then ``model:``, the backend a generating data stage (pass-rate, distill, pairs) uses."""

    model: GeneratorModel = field(default_factory=GeneratorModel)


@dataclass
class LoadDataConfig(ReadsInput):
    source: SourceOptions = field(default_factory=SourceOptions)
    output: DataOutput = output_group("outputs/data/loaded")


@dataclass
class CleanConfig(ReadsInput):
    clean: CleanOptions = field(default_factory=CleanOptions)
    output: DataOutput = output_group("outputs/data/clean")


@dataclass
class DedupConfig(ReadsInput):
    dedup: DedupOptions = field(default_factory=DedupOptions)
    decontaminate: DecontaminateOptions = field(default_factory=DecontaminateOptions)
    output: DataOutput = output_group("outputs/data/dedup")


@dataclass
class PassRateFilterConfig(GeneratesWithModel):
    filter: PassRateOptions = field(default_factory=PassRateOptions)
    output: DataOutput = output_group("outputs/data/pass-rate")


@dataclass
class DistillConfig(GeneratesWithModel):
    distill: DistillOptions = field(default_factory=DistillOptions)
    output: DataOutput = output_group("outputs/data/distill")
