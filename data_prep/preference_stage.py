"""The ``preference-pairs`` pipeline stage: scored rollouts in, MPO preference rows out.

If the input already holds scored rollouts (``completions`` plus ``correct`` and/or ``rm_scores``)
they are paired as they are. Otherwise the stage makes them, as R1V2 does for MPO (arXiv
2504.16656): k rollouts per prompt from the current policy (``model:``, chained from the previous
model stage in a pipeline), each verified against the gold ``solution`` with the accuracy reward;
with ``rollouts.include_reference`` the row's own SFT trace (``completion``) joins the candidates
and is verified like the others. With ``reward_model.name_or_path`` every candidate is also scored
by that reward model (R1V2: Skywork-VL Reward), so ``pairs.criterion: margin`` can keep the pairs
whose score margin reaches ``pairs.min_margin`` (the paper's threshold: 15). Generation and scoring
are chunked and persisted (a killed run resumes). Counts of every dropped prompt/pair go to
``manifest.json``, and the candidates the reward model could not score to ``rm_failures``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from data_prep.chunks import ChunkStore, job_fingerprint, run_chunked
from data_prep.data_stage import DataStage, LazyBackend
from data_prep.manifest import Manifest
from data_prep.pass_rate import SamplingOptions, score_rows
from data_prep.preference_pairs import (
    SCORE_CRITERIA,
    PairRules,
    build_preference_dataset,
    check_scores_available,
    response_text,
)
from data_prep.stage_config import DataOutput, GeneratesWithModel, output_group
from skywork_rl.data.schema import REQUIRED_COLUMNS
from skywork_rl.families.capabilities import check_generator_family


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
class PairRewardModel:
    """Recipe group ``reward_model:`` — the reward model that scores every candidate rollout."""

    name_or_path: str = field(
        default="",
        metadata={
            "help": "Reward model (folder or hub id; text sequence classifier or VLM with a reward head). "
            "Empty: no scoring; scores then come only from the input's score column."
        },
    )
    kind: Literal["auto", "text", "vlm"] = field(
        default="auto", metadata={"help": "auto: vlm when the checkpoint's config has a vision_config."}
    )
    batch_size: int = field(default=8, metadata={"help": "Candidates per reward-model forward pass."})
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Tokens per input; longer ones lose the start of the prompt (default: the model's)."
        },
    )
    dtype: str = field(default="auto", metadata={"help": "torch dtype of the reward model."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the reward model's own code."})

    def build(self) -> Any:
        from skywork_rl.rewards.reward_model import RewardModelReward  # defers torch

        return RewardModelReward(
            self.name_or_path,
            kind=self.kind,
            batch_size=self.batch_size,
            max_length=self.max_length,
            dtype=self.dtype,
            trust_remote_code=self.trust_remote_code,
            key="reward_model.name_or_path",
        )


@dataclass
class PreferencePairsConfig(GeneratesWithModel):
    rollouts: RolloutOptions = field(default_factory=RolloutOptions)
    reward_model: PairRewardModel = field(default_factory=PairRewardModel)
    pairs: PairRules = field(default_factory=PairRules)
    output: DataOutput = output_group("outputs/data/pairs")


def _reference_text(completion: Any) -> str | None:
    if not completion:
        return None

    return response_text(completion, "completion") or None


class PreferencePairsStage(DataStage):
    """Build MPO preference pairs from (scored, or here sampled and verified) rollouts."""

    name = "preference-pairs"
    config_class = PreferencePairsConfig
    input_model_key = "model.name_or_path"
    # the output keeps every canonical column, so a missing one must fail before any rollout is sampled
    required_columns = REQUIRED_COLUMNS

    @classmethod
    def rehearsal_substitutions(cls, stage_id: str, config: dict[str, Any], rehearsal: Any) -> dict[str, Any]:
        """The rollout model and, besides, the reward model that scores the rollouts."""
        return {
            **super().rehearsal_substitutions(stage_id, config, rehearsal),
            **rehearsal.model_substitution(config, "reward_model.name_or_path", "reward_model"),
        }

    def run(self) -> dict[str, float]:
        cfg: PreferencePairsConfig = self.config
        dataset, manifest = self.start(check=self._check_input)
        if cfg.pairs.completions_column not in dataset.column_names:
            with manifest.timed("generate_and_verify"):
                dataset = self._sample_and_verify(dataset, manifest)
        else:
            if (
                cfg.pairs.criterion not in SCORE_CRITERIA
                and cfg.pairs.correct_column not in dataset.column_names
            ):
                with manifest.timed("verify"):
                    dataset = self._verify(dataset)
            if self._scores_here(dataset):
                with manifest.timed("score"):
                    dataset = self._score(dataset, manifest)
        if cfg.pairs.score_column in dataset.column_names:
            manifest.extra["rm_failures"] = sum(
                s is None for scores in dataset[cfg.pairs.score_column] for s in scores or []
            )
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
        check_scores_available(
            self.config.pairs,
            dataset.column_names,
            f"input.path ({self.config.input.path})",
            can_score=bool(self.config.reward_model.name_or_path),
        )
        if self.config.pairs.completions_column not in dataset.column_names:  # rollouts will be sampled
            check_generator_family(self.config.model, dataset, where=f"stage {self.name}")

    def _scores_here(self, dataset: Any) -> bool:
        """A reward model is set and the input has no scores of its own (given scores are kept)."""
        return bool(self.config.reward_model.name_or_path) and (
            self.config.pairs.score_column not in dataset.column_names
        )

    def _score(self, dataset: Any, manifest: Manifest) -> Any:
        """Add ``rm_scores`` to given rollouts, chunked and persisted like generation."""
        from dataclasses import asdict

        cfg: PreferencePairsConfig = self.config
        column = cfg.pairs.completions_column
        fingerprint = job_fingerprint(
            cfg.reward_model.name_or_path, dataset, asdict(cfg.reward_model), ("solution", column)
        )
        store = ChunkStore(
            self.output_dir / "score_chunks",
            fingerprint,
            restart=cfg.output.overwrite,
            discard=self.replacing,
        )
        reward = cfg.reward_model.build()

        def process(indices: list[int], chunk: int) -> list[dict[str, Any]]:
            rows = [dataset[i] for i in indices]
            scores = _score_rows(reward, rows, [list(row[column]) for row in rows])
            return [{"index": i, "rm_scores": sc} for i, sc in zip(indices, scores, strict=True)]

        records, ran = run_chunked(len(dataset), cfg.rollouts.chunk_size, store, process, desc="rm scores")
        manifest.extra["score_chunks_run_now"] = ran
        return dataset.add_column(
            cfg.pairs.score_column, [records[i]["rm_scores"] for i in range(len(dataset))]
        )

    def _verify(self, dataset: Any) -> Any:
        """Add ``correct`` by checking each response's final answer against the row's gold solution."""
        column = self.config.pairs.completions_column
        texts = [[response_text(r, column) for r in rs] for rs in dataset[column]]
        rows = [
            {"solution": s, "choices": c} for s, c in zip(dataset["solution"], _choices(dataset), strict=True)
        ]
        verdicts = [[s > 0.5 for s in scores] for scores in score_rows(rows, texts)]
        return dataset.add_column(self.config.pairs.correct_column, verdicts)

    def _sample_and_verify(self, dataset: Any, manifest: Manifest) -> Any:
        cfg: PreferencePairsConfig = self.config
        opts = cfg.rollouts
        # verdicts depend on the gold solutions; the reference candidates are the rows' own traces
        columns = ("solution", "completion") if opts.include_reference else ("solution",)
        scoring = self._scores_here(dataset)
        # the reward model's options join the fingerprint: saved chunks hold its scores
        options = {**asdict(opts), **({"reward_model": asdict(cfg.reward_model)} if scoring else {})}
        fingerprint = job_fingerprint(cfg.model.name_or_path, dataset, options, columns)
        store = ChunkStore(
            self.output_dir / "rollout_chunks",
            fingerprint,
            restart=cfg.output.overwrite,
            discard=self.replacing,
        )
        backend = LazyBackend(cfg.model)
        reward = cfg.reward_model.build() if scoring else None

        def process(indices: list[int], chunk: int) -> list[dict[str, Any]]:
            rows = [dataset[i] for i in indices]
            sampled = backend.generate(
                rows, sampling=opts.sampling(chunk), num_generations=opts.num_generations
            )
            texts = [list(s) for s in sampled]
            if opts.include_reference:
                for row, candidates in zip(rows, texts, strict=True):
                    ref = _reference_text(row.get("completion"))
                    if ref is not None:
                        candidates.insert(0, ref)
            scores = score_rows(rows, texts)
            records = [
                {"index": i, "id": row["id"], "completions": t, "correct": [s > 0.5 for s in sc]}
                for i, row, t, sc in zip(indices, rows, texts, scores, strict=True)
            ]
            if reward is not None:
                for record, rm_scores in zip(records, _score_rows(reward, rows, texts), strict=True):
                    record["rm_scores"] = rm_scores
            return records

        records, ran = run_chunked(len(dataset), opts.chunk_size, store, process, desc="rollouts")
        manifest.extra["chunks_run_now"] = ran
        pairs = cfg.pairs
        ordered = [records[i] for i in range(len(dataset))]
        dataset = dataset.add_column(pairs.completions_column, [r["completions"] for r in ordered])
        if scoring:
            dataset = dataset.add_column(pairs.score_column, [r["rm_scores"] for r in ordered])
        return dataset.add_column(pairs.correct_column, [r["correct"] for r in ordered])


def _choices(dataset: Any) -> list[Any]:
    return list(dataset["choices"]) if "choices" in dataset.column_names else [None] * len(dataset)


def _score_rows(reward: Any, rows: list[dict[str, Any]], texts: list[list[str]]) -> list[list[float | None]]:
    """Reward-model scores of every candidate of every row (None: the model could not score it),
    in one `score` call so the reward model batches across rows."""
    prompts, completions, images = [], [], []
    for row, candidates in zip(rows, texts, strict=True):
        for text in candidates:
            prompts.append(row["prompt"])
            completions.append(text)
            images.append(list(row.get("images") or []))
    flat = reward.score(prompts, completions, images) if completions else []
    out, start = [], 0
    for candidates in texts:
        out.append(flat[start : start + len(candidates)])
        start += len(candidates)
    return out
