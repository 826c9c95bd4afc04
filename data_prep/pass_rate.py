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
        from skywork_rl.rewards import score_accuracy

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
        rows,
        num_generations=options.num_generations,
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        seed=options.seed + chunk,
    )
    if len(completions) != len(rows):
        raise RuntimeError(f"generation backend returned {len(completions)} lists for {len(rows)} prompts")
    return completions, score_rows(rows, completions, score_fn)


def pass_rate_chunk(
    dataset: Any,
    indices: list[int],
    chunk: int,
    backend: Any,
    options: SamplingOptions,
    score_fn: ScoreFn | None = None,
) -> list[dict[str, Any]]:
    """Sample k rollouts for each row of one chunk and score them; one record per row."""
    from skywork_rl.generation import not_generated

    rows = [dataset[i] for i in indices]
    completions, scores = sample_and_score(rows, chunk, backend, options, score_fn)
    skipped = not_generated(completions)
    records = []
    for position, (i, row, s) in enumerate(zip(indices, rows, scores, strict=True)):
        record = {"index": i, "id": row["id"], "num_correct": int(sum(s)), "num_generations": len(s)}
        # a prompt the backend could not generate for (e.g. longer than vLLM's max_model_len) has no
        # pass rate: None, counted as `not_generated` by `cut`, never a 0.0 that reads as too hard
        record["pass_rate"] = sum(s) / len(s) if s else None
        if position in skipped:
            record["not_generated"] = skipped[position]
        records.append(record)
    return records


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
    records, ran = run_chunked(
        len(dataset),
        options.chunk_size,
        store,
        lambda indices, chunk: pass_rate_chunk(dataset, indices, chunk, backend, options, score_fn),
        desc="pass rate",
        progress=progress,
    )
    ids = dataset["id"]
    rates = []
    for i in range(len(dataset)):
        record = records[i]
        if record["id"] != ids[i]:
            raise RuntimeError(
                f"{store.directory}: saved row {i} is {record['id']!r}, dataset has {ids[i]!r}"
            )
        rate = record["pass_rate"]
        rates.append(None if rate is None else float(rate))
    return rates, ran


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
