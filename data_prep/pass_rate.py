"""Difficulty filtering by pass rate: keep prompts the current policy solves sometimes, not always or never.

GRPO's advantage is a reward's deviation from its group mean, so a prompt whose k rollouts all
succeed or all fail gives every rollout zero advantage and no gradient (the zero-advantage
problem R1V2's Selective Sample Buffer works around during training, arXiv 2504.16656). R1V3
curates its RL set up front by difficulty for the same reason. Here each prompt gets k sampled
rollouts from a generation backend, each is scored with the accuracy reward
(`skywork_rl.rewards.score_accuracy`), and the prompt's pass rate is the fraction that verified.
Rates are persisted per chunk as they finish (resumable) and written as a ``pass_rate`` column,
so a different ``[low, high]`` band can be cut later without generating again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from data_prep.chunks import ChunkStore, run_chunked
from skywork_rl.generation.protocol import SamplingParams, not_generated
from skywork_rl.rewards import score_accuracy

ScoreFn = Callable[..., list[float]]


@dataclass
class SamplingOptions:
    """Sampling settings shared by the pass-rate filter and the distiller."""

    num_generations: int = field(default=8, metadata={"help": "Rollouts per prompt (k)."})
    max_new_tokens: int = field(default=1024, metadata={"help": "Generation budget per rollout."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (rollouts must differ)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling."})
    seed: int = field(default=0, metadata={"help": "Chunk n samples with seed + n (same on resume)."})
    chunk_size: int = field(
        default=64, metadata={"help": "Prompts per persisted chunk (a kill loses at most one chunk)."}
    )

    def sampling(self, chunk: int) -> SamplingParams:
        """What the backend samples chunk `chunk` with: seeded `seed + chunk`, so a resumed chunk
        samples what the interrupted run would have."""
        return SamplingParams(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed + chunk,
        )


@dataclass
class PassRateOptions(SamplingOptions):
    """Recipe group `filter:`: the band of pass rates to keep, plus how rollouts are sampled."""

    low: float = field(
        default=0.05, metadata={"help": "Keep prompts with pass_rate >= low (0 < low drops never-solved)."}
    )
    high: float = field(
        default=0.95, metadata={"help": "Keep prompts with pass_rate <= high (high < 1 drops always-solved)."}
    )
    recut: bool = field(
        default=False,
        metadata={
            "help": "Re-apply low/high to the saved pass rates (output_dir/scored) without generating."
        },
    )


def check_band(low: float, high: float) -> None:
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"filter.low/high: need 0 <= low <= high <= 1, got low={low}, high={high}")


def score_rows(
    rows: Sequence[dict[str, Any]],
    completions: Sequence[Sequence[str]],
    score_fn: ScoreFn | None = None,
) -> list[list[float]]:
    """Accuracy of every completion of every row (one `score_accuracy` call for the whole chunk)."""
    if score_fn is None:
        score_fn = score_accuracy
    flat, solutions, choices = [], [], []
    for row, texts in zip(rows, completions, strict=True):
        for text in texts:
            flat.append(text)
            solutions.append(row["solution"])
            choices.append(row.get("choices") or None)
    scores = score_fn(flat, solutions, choices) if flat else []
    out, start = [], 0
    for texts in completions:
        out.append([float(s) for s in scores[start : start + len(texts)]])
        start += len(texts)
    return out


def sample_and_score(
    rows: list[dict[str, Any]],
    chunk: int,
    backend: Any,
    options: SamplingOptions,
    score_fn: ScoreFn | None = None,
) -> tuple[list[list[str]], list[list[float]]]:
    """k completions per row from `backend` (seeded per chunk, so a resumed chunk samples the same), scored."""
    completions = backend.generate(
        rows, sampling=options.sampling(chunk), num_generations=options.num_generations
    )
    if len(completions) != len(rows):
        raise RuntimeError(f"generation backend returned {len(completions)} lists for {len(rows)} prompts")
    return completions, score_rows(rows, completions, score_fn)


def chunk_records(
    dataset: Any,
    indices: list[int],
    chunk: int,
    backend: Any,
    options: SamplingOptions,
    score_fn: ScoreFn | None,
    summarize: Callable[[list[str], list[float]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Sample and score one chunk's rows; one record per row: ``index``, ``id``, what `summarize` makes
    of its completions and their scores, and ``not_generated`` (the reason) for a row the backend
    could not generate for (e.g. a prompt longer than vLLM's ``max_model_len``)."""
    rows = [dataset[i] for i in indices]
    completions, scores = sample_and_score(rows, chunk, backend, options, score_fn)
    skipped = not_generated(completions)
    records = []
    for position, (i, row, texts, row_scores) in enumerate(
        zip(indices, rows, completions, scores, strict=True)
    ):
        record = {"index": i, "id": row["id"], **summarize(list(texts), list(row_scores))}
        if position in skipped:
            record["not_generated"] = skipped[position]
        records.append(record)
    return records


def _pass_rate_record(texts: list[str], scores: list[float]) -> dict[str, Any]:
    # a prompt the backend could not generate for has no pass rate: None, counted as `not_generated`
    # by `cut`, never a 0.0 that reads as too hard
    rate = sum(scores) / len(scores) if scores else None
    return {"num_correct": int(sum(scores)), "num_generations": len(scores), "pass_rate": rate}


def sample_all_rows(
    dataset: Any,
    backend: Any,
    options: SamplingOptions,
    store: ChunkStore,
    score_fn: ScoreFn | None,
    summarize: Callable[[list[str], list[float]], dict[str, Any]],
    desc: str,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """Every row's record, in row order (chunks missing from `store` are sampled and scored now, see
    `chunk_records`), and how many chunks ran now. A saved record of another row than the dataset's
    (the input changed under a resumed job) is an error, never a rate given to the wrong row."""
    records, ran = run_chunked(
        len(dataset),
        options.chunk_size,
        store,
        lambda indices, chunk: chunk_records(dataset, indices, chunk, backend, options, score_fn, summarize),
        desc=desc,
        progress=progress,
    )
    ids = dataset["id"]
    for i in range(len(dataset)):
        if records[i]["id"] != ids[i]:
            raise RuntimeError(
                f"{store.directory}: saved row {i} is {records[i]['id']!r}, dataset has {ids[i]!r}"
            )
    return [records[i] for i in range(len(dataset))], ran


def compute_pass_rates(
    dataset: Any,
    backend: Any,
    options: SamplingOptions,
    store: ChunkStore,
    score_fn: ScoreFn | None = None,
    progress: bool = True,
) -> tuple[list[float | None], int]:
    """Pass rate of every row (resuming from `store`; None for a row that got no completion), and
    how many chunks ran now."""
    records, ran = sample_all_rows(
        dataset, backend, options, store, score_fn, _pass_rate_record, "pass rate", progress
    )
    return [None if r["pass_rate"] is None else float(r["pass_rate"]) for r in records], ran


def cut(pass_rates: Sequence[float | None], low: float, high: float) -> tuple[list[int], Counter[str]]:
    """Indices with ``low <= rate <= high``, and the others counted as ``too_hard`` / ``too_easy``, or
    ``not_generated`` for a row without a rate (the backend skipped it; the log says why)."""
    check_band(low, high)
    kept: list[int] = []
    dropped: Counter[str] = Counter()
    for i, rate in enumerate(pass_rates):
        if rate is None:
            dropped["not_generated"] += 1
        elif rate < low:
            dropped["too_hard"] += 1
        elif rate > high:
            dropped["too_easy"] += 1
        else:
            kept.append(i)
    return kept, dropped


def histogram(pass_rates: Sequence[float | None]) -> dict[str, int]:
    """Counts per distinct pass rate (k+1 values at most), for the manifest; rows without a rate are
    left out (`cut` counts them)."""
    counts = Counter(round(r, 4) for r in pass_rates if r is not None)
    return {f"{rate:.4f}": n for rate, n in sorted(counts.items())}
