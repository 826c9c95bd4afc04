"""The curation steps as pipeline stages: load-data, clean, dedup, pass-rate-filter, distill.

Each reads a dataset (`input:`), writes one with `save_to_disk` plus ``manifest.json`` (`output:`),
refuses to replace a finished output unless ``output.overwrite: true``, and returns the manifest's
counts as its metrics. Each refuses nonsense (`data_prep/refusals.py`): an unreadable or empty
input, or one without a column it reads, fails before a row is dropped; an output that would be
empty fails with the drop counts before anything is saved. What they share is `DataStage`
(`data_prep/data_stage.py`); ``load-data`` lives in `data_prep/load_stage.py`.
"""

from __future__ import annotations

from typing import Any

from data_prep.chunks import ChunkStore, job_fingerprint
from data_prep.cleaning import clean_dataset
from data_prep.data_stage import DataStage, LazyBackend, config_dict
from data_prep.decontaminate import build_index
from data_prep.dedup import find_duplicates, fingerprint
from data_prep.distill import distill, sampling_settings, sft_rows
from data_prep.load_stage import LoadDataStage
from data_prep.manifest import Manifest
from data_prep.pass_rate import check_band, compute_pass_rates, cut, histogram
from data_prep.refusals import format_drops
from data_prep.stage_config import CleanConfig, DedupConfig, DistillConfig, PassRateFilterConfig
from skywork_rl.data.schema import prompt_text
from skywork_rl.errors import DataError
from skywork_rl.families.capabilities import check_generator_family
from skywork_rl.stages.rehearsal import RehearsalError

__all__ = [
    "CleanStage",
    "DataStage",
    "DedupStage",
    "DistillStage",
    "LazyBackend",
    "LoadDataStage",
    "PassRateFilterStage",
]


class CleanStage(DataStage):
    """Drop rows with missing/corrupt images or empty answers; normalise answers; count each drop."""

    name = "clean"
    config_class = CleanConfig
    empty_hint = (
        "Fix the source or its load-data mapping for the reason that dropped the rows (e.g. "
        "source.columns.answer naming an empty column), or relax clean.require_images / clean.min_image_side."
    )

    def run(self) -> dict[str, float]:
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
    input_file_keys = {
        "decontaminate.benchmarks": "a `benchmark-data` stage earlier in the pipeline writes benchmark questions "
        "(name them as ${stages.<its id>.output_dir}/mmmu_validation.jsonl; recipes/README.md)"
    }
    empty_hint = (
        "Every row matched a benchmark question: check that decontaminate.benchmarks lists evaluation "
        "sets, not this training data, and decontaminate.ngram."
    )

    @classmethod
    def rehearsal_substitutions(cls, stage_id: str, config: dict[str, Any], rehearsal: Any) -> dict[str, Any]:
        """The decontamination files must be made by the pipeline (a benchmark-data stage), whose
        rehearsal makes them from the benchmarks' stand-ins."""
        external = [
            str(path)
            for path in ((config.get("decontaminate") or {}).get("benchmarks") or [])
            if not rehearsal.is_internal(path)
        ]
        if external:
            raise RehearsalError(
                f"stage {stage_id}: decontaminate.benchmarks {external} are not made by the pipeline; a rehearsal "
                "has stand-ins for the benchmarks a benchmark-data stage reads: make the files with one and name "
                "its output (${stages.<id>.output_dir}/...)"
            )
        return super().rehearsal_substitutions(stage_id, config, rehearsal)

    def run(self) -> dict[str, float]:
        from datasets import Image, List
        from tqdm.auto import tqdm

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
    required_columns = ("prompt", "solution", "id")

    def run(self) -> dict[str, float]:
        cfg: PassRateFilterConfig = self.config
        check_band(cfg.filter.low, cfg.filter.high)
        if cfg.filter.recut:
            return self._recut()
        dataset, manifest = self.start(
            check=lambda ds: check_generator_family(cfg.model, ds, where=f"stage {self.name}")
        )
        sampling = {k: v for k, v in config_dict(cfg.filter).items() if k not in ("low", "high", "recut")}
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
            raise DataError(
                f"filter.recut: no saved pass rates at {scored_dir}; run the filter once without recut first"
            )
        manifest = Manifest(step=self.name, config=config_dict(cfg))
        scored = datasets.load_from_disk(str(scored_dir))
        manifest.rows_in = len(scored)
        manifest.extra["recut"] = True
        return self._apply_cut(scored, manifest)

    def _apply_cut(self, scored: Any, manifest: Manifest) -> dict[str, float]:
        cfg = self.config.filter
        rates = scored["pass_rate"]
        kept, dropped = cut(rates, cfg.low, cfg.high)
        manifest.dropped.update(dropped)
        manifest.extra["pass_rate_histogram"] = histogram(rates)
        hint = (
            f"Widen filter.low/filter.high (pass rates: {histogram(rates)}) and cut again without "
            f"generating: --filter.recut true (the rates are saved in {self.output_dir / 'scored'})."
        )
        metrics = self.finish(scored.select(kept), manifest, hint)
        rated = [r for r in rates if r is not None]
        metrics["pass_rate/mean"] = sum(rated) / len(rated) if rated else 0.0
        return metrics


class DistillStage(DataStage):
    """A teacher writes reasoning traces; verified, well-formed, length-bounded ones become SFT rows."""

    name = "distill"
    config_class = DistillConfig
    input_model_key = "model.name_or_path"
    required_columns = ("prompt", "solution", "id")

    def run(self) -> dict[str, float]:
        cfg: DistillConfig = self.config
        dataset, manifest = self.start(
            check=lambda ds: check_generator_family(cfg.model, ds, where=f"stage {self.name}")
        )
        # Chunks hold raw scored candidates, so a finished output is replaced by re-judging them
        # (new length/format rules need no teacher); only a different sampling job starts over.
        fingerprint = job_fingerprint(cfg.model.name_or_path, dataset, sampling_settings(cfg.distill))
        store = ChunkStore(self.output_dir / "distill_chunks", fingerprint, restart=cfg.output.overwrite)
        with manifest.timed("generate_and_verify"):
            backend = LazyBackend(cfg.model)
            traces, rejected, ran = distill(dataset, backend, cfg.distill, store)
        out, no_trace = sft_rows(dataset, traces)
        manifest.drop("no_verified_trace", no_trace)
        not_generated = sum(kept is None for _, kept in traces)  # the backend skipped the prompt
        if not_generated:
            manifest.drop("not_generated", not_generated)
        manifest.extra.update(candidates_rejected=dict(rejected), chunks_run_now=ran)
        hint = (
            f"No candidate trace was kept (rejected: {format_drops(rejected)}); loosen distill.require_format / "
            "min_chars / max_chars (saved candidates are re-judged without the teacher) or sample more "
            "(distill.num_generations)."
        )
        metrics = self.finish(out, manifest, hint)
        candidates = len(dataset) * cfg.distill.num_generations
        metrics["candidates/accepted_fraction"] = len(out) / candidates if candidates else 0.0
        return metrics
