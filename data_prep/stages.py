"""The curation steps as pipeline stages: load-data, clean, dedup, pass-rate-filter, distill.

Each reads a dataset (`input:`), writes one with `save_to_disk` plus ``manifest.json`` (`output:`),
refuses to replace a finished output unless ``output.overwrite: true``, and returns the manifest's
counts as its metrics. They run as plain processes (``distributed = False``): curation is I/O and
generation bound, and the generation backend (vLLM) does its own parallelism.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from data_prep.manifest import Manifest, begin_replace, guard_output, save_dataset
from data_prep.stage_config import (
    CleanConfig,
    DataInput,
    DedupConfig,
    DistillConfig,
    GeneratorModel,
    LoadDataConfig,
    PassRateFilterConfig,
)
from skywork_rl.stages.base import Stage


def _config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def load_input(inp: DataInput) -> Any:
    from skywork_rl.data import load_stage_dataset

    ds = load_stage_dataset(inp.path, inp.split, key="input.path")
    if inp.max_rows is not None:
        ds = ds.select(range(min(inp.max_rows, len(ds))))
    return ds


class LazyBackend:
    """The model's generation backend, built on the first `generate` call: a run whose chunks are all
    saved already never loads the model."""

    def __init__(self, model: GeneratorModel) -> None:
        self.model = model
        self._backend: Any = None

    def generate(self, rows: Any, **kwargs: Any) -> list[list[str]]:
        if self._backend is None:
            self._backend = self.model.build()
        return self._backend.generate(rows, **kwargs)


class DataStage(Stage):
    """What the data stages share: chaining keys, the output guard, the manifest."""

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

    def start(self, check: Callable[[Any], None] | None = None) -> tuple[Any, Manifest]:
        """Check the output may be written (before anything in the folder changes), read the input,
        run `check` on it (a stage's input checks; a failure there also leaves the folder as it was),
        open the manifest."""
        self.replacing = guard_output(self.output_dir, self.config.output.overwrite)
        manifest = Manifest(step=self.name, config=_config_dict(self.config))
        with manifest.timed("load"):
            dataset = load_input(self.config.input)
        if check is not None:
            check(dataset)
        if self.replacing:
            begin_replace(self.output_dir)
        manifest.rows_in = len(dataset)
        return dataset, manifest

    def finish(self, dataset: Any, manifest: Manifest) -> dict[str, float]:
        save_dataset(dataset, self.output_dir, manifest)
        return manifest.metrics()


class LoadDataStage(DataStage):
    """Load a public or local dataset and map its columns into the canonical schema."""

    name = "load-data"
    config_class = LoadDataConfig
    input_data_key = None  # the source is named by the recipe, never chained from a previous stage

    def run(self) -> dict[str, float]:
        from data_prep.adapters import DROP, adapt_dataset
        from data_prep.mappings import resolve_mapping

        cfg: LoadDataConfig = self.config
        mapping = resolve_mapping(cfg.source.mapping, cfg.source.columns, where="source")
        raw, manifest = self.start()
        with manifest.timed("adapt"):
            mapped = adapt_dataset(
                raw,
                mapping,
                split=cfg.input.split,
                image_root=cfg.source.image_root,
                system_prompt=cfg.source.system_prompt,
                where=f"input.path ({cfg.input.path})",
                num_proc=cfg.output.num_proc,
            )
            for reason in mapped[DROP]:
                if reason:
                    manifest.drop(reason)
            kept = mapped.filter(lambda r: not r, input_columns=[DROP]).remove_columns(DROP)
        manifest.extra["mapping"] = dataclasses.asdict(mapping)
        return self.finish(kept, manifest)


class CleanStage(DataStage):
    """Drop rows with missing/corrupt images or empty answers; normalise answers; count each drop."""

    name = "clean"
    config_class = CleanConfig

    def run(self) -> dict[str, float]:
        from data_prep.cleaning import clean_dataset

        cfg: CleanConfig = self.config
        dataset, manifest = self.start()
        with manifest.timed("clean"):
            kept, dropped = clean_dataset(dataset, cfg.clean, num_proc=cfg.output.num_proc)
        manifest.dropped.update(dropped)
        return self.finish(kept, manifest)


class DedupStage(DataStage):
    """Exact + near-duplicate removal (MinHash LSH) and decontamination against benchmark questions."""

    name = "dedup"
    config_class = DedupConfig

    def run(self) -> dict[str, float]:
        from datasets import Image, List
        from tqdm.auto import tqdm

        from data_prep.decontaminate import build_index
        from data_prep.dedup import find_duplicates, fingerprint
        from data_prep.schema import prompt_text

        cfg: DedupConfig = self.config
        dataset, manifest = self.start()
        keep = list(range(len(dataset)))
        if cfg.decontaminate.benchmarks:
            with manifest.timed("decontaminate"):
                index = build_index(cfg.decontaminate)
                prompts = dataset["prompt"]
                keep = [i for i in keep if not index.is_contaminated(prompt_text(prompts[i]))]
                manifest.drop("contaminated", len(dataset) - len(keep))
                manifest.extra["benchmark_questions"] = len(index)
        if cfg.dedup.exact or cfg.dedup.near:
            with manifest.timed("dedup"):
                raw = dataset.select(keep)
                if "images" in raw.column_names:
                    raw = raw.cast_column("images", List(Image(decode=False)))
                prints = (fingerprint(row) for row in tqdm(raw, desc="fingerprint", total=len(raw)))
                report = find_duplicates(prints, cfg.dedup)
                for reason, n in report.counts().items():
                    manifest.drop(reason, n)
                keep = [keep[i] for i in report.kept]
        return self.finish(dataset.select(keep), manifest)


class PassRateFilterStage(DataStage):
    """Sample k rollouts per prompt, score them, keep prompts with pass rate in [low, high]."""

    name = "pass-rate-filter"
    config_class = PassRateFilterConfig
    input_model_key = "model.name_or_path"

    def run(self) -> dict[str, float]:
        from data_prep.pass_rate import check_band

        cfg: PassRateFilterConfig = self.config
        check_band(cfg.filter.low, cfg.filter.high)
        if cfg.filter.recut:
            return self._recut()
        from data_prep.chunks import ChunkStore, job_fingerprint
        from data_prep.pass_rate import compute_pass_rates

        dataset, manifest = self.start()
        sampling = {k: v for k, v in _config_dict(cfg.filter).items() if k not in ("low", "high", "recut")}
        fingerprint = job_fingerprint(cfg.model.name_or_path, dataset, sampling)
        # Replacing a finished output regenerates: rates depend on more than the fingerprint can see
        # (a hub model's new revision, the verifier's code). A new band needs no rerun: `filter.recut`.
        store = ChunkStore(
            self.output_dir / "pass_rate_chunks",
            fingerprint,
            restart=cfg.output.overwrite,
            discard=self.replacing,
        )
        with manifest.timed("generate_and_score"):
            backend = LazyBackend(cfg.model)
            rates, ran = compute_pass_rates(dataset, backend, cfg.filter, store)
        manifest.extra["chunks_run_now"] = ran
        scored = dataset.add_column("pass_rate", rates)
        with manifest.timed("save_scored"):
            scored.save_to_disk(str(self.output_dir / "scored"))
        return self._apply_cut(scored, manifest)

    def _recut(self) -> dict[str, float]:
        import datasets

        cfg: PassRateFilterConfig = self.config
        scored_dir = self.output_dir / "scored"
        if not (scored_dir / "dataset_info.json").exists():
            raise FileNotFoundError(
                f"filter.recut: no saved pass rates at {scored_dir}; run the filter once without recut first"
            )
        manifest = Manifest(step=self.name, config=_config_dict(cfg))
        scored = datasets.load_from_disk(str(scored_dir))
        manifest.rows_in = len(scored)
        manifest.extra["recut"] = True
        return self._apply_cut(scored, manifest)

    def _apply_cut(self, scored: Any, manifest: Manifest) -> dict[str, float]:
        from data_prep.pass_rate import cut, histogram

        cfg = self.config.filter
        rates = scored["pass_rate"]
        kept, dropped = cut(rates, cfg.low, cfg.high)
        manifest.dropped.update(dropped)
        manifest.extra["pass_rate_histogram"] = histogram(rates)
        metrics = self.finish(scored.select(kept), manifest)
        metrics["pass_rate/mean"] = sum(rates) / len(rates) if rates else 0.0
        return metrics


class DistillStage(DataStage):
    """A teacher writes reasoning traces; verified, well-formed, length-bounded ones become SFT rows."""

    name = "distill"
    config_class = DistillConfig
    input_model_key = "model.name_or_path"

    def run(self) -> dict[str, float]:
        from data_prep.chunks import ChunkStore, job_fingerprint
        from data_prep.distill import distill, sampling_settings, sft_rows

        cfg: DistillConfig = self.config
        dataset, manifest = self.start()
        # Chunks hold raw scored candidates, so a finished output is replaced by re-judging them
        # (new length/format rules need no teacher); only a different sampling job starts over.
        fingerprint = job_fingerprint(cfg.model.name_or_path, dataset, sampling_settings(cfg.distill))
        store = ChunkStore(self.output_dir / "distill_chunks", fingerprint, restart=cfg.output.overwrite)
        with manifest.timed("generate_and_verify"):
            backend = LazyBackend(cfg.model)
            traces, rejected, ran = distill(dataset, backend, cfg.distill, store)
        out, no_trace = sft_rows(dataset, traces)
        manifest.drop("no_verified_trace", no_trace)
        manifest.extra.update(candidates_rejected=dict(rejected), chunks_run_now=ran)
        metrics = self.finish(out, manifest)
        candidates = len(dataset) * cfg.distill.num_generations
        metrics["candidates/accepted_fraction"] = len(out) / candidates if candidates else 0.0
        return metrics
