"""The ``preference-pairs`` pipeline stage: scored rollouts in, MPO preference rows out.

If the input already holds scored rollouts (``completions`` plus ``correct`` and/or ``rm_scores``,
e.g. written by a reward-model scoring job) they are paired as they are. Otherwise the stage makes
them, as R1V2 does for MPO (arXiv 2504.16656, MPO section): k rollouts per prompt from the current policy
(``model:``, chained from the previous model stage in a pipeline), each verified against the gold
``solution`` with the accuracy reward; with ``rollouts.include_reference`` the row's own SFT trace
(``completion``) joins the candidates and is verified like the others. Generation is chunked and
persisted (a killed run resumes). Counts of every dropped prompt/pair go to ``manifest.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from data_prep.data_stage import DataStage, LazyBackend
from data_prep.manifest import Manifest
from data_prep.pass_rate import SamplingOptions
from data_prep.preference_pairs import PairRules, build_preference_dataset
from data_prep.stage_config import DataInput, DataOutput, GeneratorModel
from skywork_rl.schema import REQUIRED_COLUMNS


@dataclass
class RolloutOptions(SamplingOptions):
    """Recipe group ``rollouts:`` — how rollouts are sampled when the input has none."""

    include_reference: bool = field(
        default=True,
        metadata={
            "help": "Add the row's `completion` (SFT trace) as a candidate; it is verified like the rest."
        },
    )


@dataclass
class PreferencePairsConfig:
    input: DataInput = field(default_factory=DataInput)
    model: GeneratorModel = field(default_factory=GeneratorModel)
    rollouts: RolloutOptions = field(default_factory=RolloutOptions)
    pairs: PairRules = field(default_factory=PairRules)
    output: DataOutput = field(default_factory=lambda: DataOutput(output_dir="outputs/data/pairs"))


def _reference_text(completion: Any) -> str | None:
    if not completion:
        return None
    from data_prep.preference_pairs import response_text

    return response_text(completion, "completion") or None


class PreferencePairsStage(DataStage):
    """Build MPO preference pairs from (scored, or here sampled and verified) rollouts."""

    name = "preference-pairs"
    config_class = PreferencePairsConfig
    input_model_key = "model.name_or_path"
    # the output keeps every canonical column, so a missing one must fail before any rollout is sampled
    required_columns = REQUIRED_COLUMNS

    def run(self) -> dict[str, float]:
        cfg: PreferencePairsConfig = self.config
        dataset, manifest = self.start(check=self._check_input)
        if cfg.pairs.completions_column not in dataset.column_names:
            with manifest.timed("generate_and_verify"):
                dataset = self._sample_and_verify(dataset, manifest)
        elif cfg.pairs.criterion != "reward" and cfg.pairs.correct_column not in dataset.column_names:
            with manifest.timed("verify"):
                dataset = self._verify(dataset)
        with manifest.timed("pair"):
            pairs, stats = build_preference_dataset(dataset, cfg.pairs)
        manifest.dropped.update(stats.dropped)
        manifest.extra["pairs"] = stats.pairs
        manifest.extra["prompts"] = stats.prompts
        metrics = self.finish(pairs, manifest)
        metrics.update(stats.as_metrics())
        return metrics

    def _check_input(self, dataset: Any) -> None:
        """Refuse rules the input cannot satisfy before sampling a single rollout."""
        from data_prep.preference_pairs import check_scores_available

        check_scores_available(
            self.config.pairs, dataset.column_names, f"input.path ({self.config.input.path})"
        )

    def _verify(self, dataset: Any) -> Any:
        """Add ``correct`` by checking each response's final answer against the row's gold solution."""
        from data_prep.pass_rate import score_rows
        from data_prep.preference_pairs import response_text

        column = self.config.pairs.completions_column
        texts = [[response_text(r, column) for r in rs] for rs in dataset[column]]
        rows = [
            {"solution": s, "choices": c} for s, c in zip(dataset["solution"], _choices(dataset), strict=True)
        ]
        verdicts = [[s > 0.5 for s in scores] for scores in score_rows(rows, texts)]
        return dataset.add_column(self.config.pairs.correct_column, verdicts)

    def _sample_and_verify(self, dataset: Any, manifest: Manifest) -> Any:
        from data_prep.chunks import ChunkStore, job_fingerprint, run_chunked
        from data_prep.pass_rate import score_rows

        cfg: PreferencePairsConfig = self.config
        opts = cfg.rollouts
        # verdicts depend on the gold solutions; the reference candidates are the rows' own traces
        columns = ("solution", "completion") if opts.include_reference else ("solution",)
        fingerprint = job_fingerprint(cfg.model.name_or_path, dataset, asdict(opts), columns)
        store = ChunkStore(
            self.output_dir / "rollout_chunks",
            fingerprint,
            restart=cfg.output.overwrite,
            discard=self.replacing,
        )
        backend = LazyBackend(cfg.model)

        def process(indices: list[int], chunk: int) -> list[dict[str, Any]]:
            rows = [dataset[i] for i in indices]
            sampled = backend.generate(
                rows,
                num_generations=opts.num_generations,
                max_new_tokens=opts.max_new_tokens,
                temperature=opts.temperature,
                top_p=opts.top_p,
                seed=opts.seed + chunk,
            )
            texts = [list(s) for s in sampled]
            if opts.include_reference:
                for row, candidates in zip(rows, texts, strict=True):
                    ref = _reference_text(row.get("completion"))
                    if ref is not None:
                        candidates.insert(0, ref)
            scores = score_rows(rows, texts)
            return [
                {"index": i, "id": row["id"], "completions": t, "correct": [s > 0.5 for s in sc]}
                for i, row, t, sc in zip(indices, rows, texts, scores, strict=True)
            ]

        records, ran = run_chunked(len(dataset), opts.chunk_size, store, process, desc="rollouts")
        manifest.extra["chunks_run_now"] = ran
        pairs = cfg.pairs
        ordered = [records[i] for i in range(len(dataset))]
        dataset = dataset.add_column(pairs.completions_column, [r["completions"] for r in ordered])
        return dataset.add_column(pairs.correct_column, [r["correct"] for r in ordered])


def _choices(dataset: Any) -> list[Any]:
    return list(dataset["choices"]) if "choices" in dataset.column_names else [None] * len(dataset)
