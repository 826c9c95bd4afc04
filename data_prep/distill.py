"""Cold-start distillation: a teacher writes reasoning traces; only verified, well-formed ones are kept.

R1V3's cold-start SFT set is reasoning traces distilled from a stronger model and kept only when
the final answer is verified correct (arXiv 2507.06167, cold-start stage). Here a teacher samples
n candidates per prompt through a generation backend; a candidate survives when its final answer
verifies against the gold (`skywork_rl.rewards.score_accuracy`), it has the R1V format
(``<think> ... </think>`` then one ``\\boxed{}`` answer, `strict_format_score`), and its length
is within bounds. Survivors become SFT rows (``completion`` = the trace) with the prompt's images.
Chunks are persisted as in the pass-rate filter, so a killed distillation resumes. They hold every
raw candidate with its score and the judging happens when the output is assembled, so tightening
the acceptance rules (lengths, format, traces kept) re-judges the saved candidates without sampling
the teacher again: only the sampling settings are part of the job's fingerprint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from data_prep.chunks import ChunkStore
from data_prep.pass_rate import SamplingOptions, ScoreFn, sample_all_rows
from skywork_rl.data.schema import assistant_message
from skywork_rl.rewards import FormatSpec
from skywork_rl.rewards.format import strict_format_score


@dataclass
class DistillOptions(SamplingOptions):
    """Recipe group `distill:` (``num_generations`` = candidates sampled per prompt)."""

    keep_per_prompt: int = field(
        default=1, metadata={"help": "Verified traces kept per prompt (first ones)."}
    )
    min_chars: int = field(default=20, metadata={"help": "Drop traces shorter than this (characters)."})
    max_chars: int = field(default=32000, metadata={"help": "Drop traces longer than this (characters)."})
    require_format: bool = field(
        default=True, metadata={"help": "Require <think>...</think> then one \\boxed{}."}
    )
    think_in_prompt: bool = field(
        default=False,
        metadata={
            "help": "The teacher's chat template opens <think> itself; traces get it prepended so SFT targets "
            "always start with <think>."
        },
    )


def sampling_settings(options: SamplingOptions) -> dict[str, Any]:
    """The fields of `options` that decide what is sampled (the rest only judge the samples)."""
    return {f.name: getattr(options, f.name) for f in fields(SamplingOptions)}


def judge_candidates(
    candidates: Sequence[str], scores: Sequence[float], options: DistillOptions
) -> tuple[list[str], Counter[str]]:
    """(accepted traces, rejections per reason) for one prompt's candidates, in sampling order."""
    spec = FormatSpec()
    accepted: list[str] = []
    rejected: Counter[str] = Counter()
    for text, score in zip(candidates, scores, strict=True):
        trace = text.strip()
        if options.think_in_prompt and not trace.startswith(spec.think_open):
            trace = f"{spec.think_open}\n{trace}"
        if len(trace) < options.min_chars:
            rejected["too_short"] += 1
        elif len(trace) > options.max_chars:
            rejected["too_long"] += 1
        elif options.require_format and strict_format_score(trace, spec) < 1.0:
            rejected["bad_format"] += 1
        elif score < 1.0:
            rejected["wrong_answer"] += 1
        elif len(accepted) < options.keep_per_prompt:
            accepted.append(trace)
    return accepted, rejected


def _candidates_record(texts: list[str], scores: list[float]) -> dict[str, Any]:
    return {"candidates": texts, "scores": scores}


def distill(
    dataset: Any,
    backend: Any,
    options: DistillOptions,
    store: ChunkStore,
    score_fn: ScoreFn | None = None,
    progress: bool = True,
) -> tuple[list[tuple[int, list[str] | None]], Counter[str], int]:
    """Traces per row index (rows with none included, empty; None for a row the teacher got no
    candidate for), candidate rejections, chunks run now.

    Chunks missing from `store` are sampled and scored; then every row's saved candidates are judged
    with the current `options`.
    """
    records, ran = sample_all_rows(
        dataset, backend, options, store, score_fn, _candidates_record, "distill", progress
    )
    rejected: Counter[str] = Counter()
    traces = []
    for i, record in enumerate(records):
        if not record["candidates"]:
            traces.append((i, None))
            continue
        kept, row_rejected = judge_candidates(record["candidates"], record["scores"], options)
        rejected.update(row_rejected)
        traces.append((i, kept))
    return traces, rejected, ran


def sft_rows(dataset: Any, traces: list[tuple[int, list[str] | None]]) -> tuple[Any, int]:
    """The SFT dataset (one row per kept trace, ``completion`` added) and how many prompts got none
    although candidates were sampled (those without candidates, None, are counted by the caller)."""
    from datasets import List, Value

    if "completion" in dataset.column_names:  # the teacher's verified traces replace any existing ones
        dataset = dataset.remove_columns("completion")
    indices, completions, ids = [], [], []
    no_trace = 0
    for i, kept in traces:
        if kept is None:
            continue
        if not kept:
            no_trace += 1
        for n, text in enumerate(kept):
            indices.append(i)
            completions.append(assistant_message(text))
            ids.append(None if n == 0 else n)
    out = dataset.select(indices)
    message = {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
    out = out.add_column("completion", completions, feature=List(message))
    if any(ids):  # several traces of one prompt: ids stay unique within the source
        new_ids = [f"{old}#{n}" if n else old for old, n in zip(out["id"], ids, strict=True)]
        out = out.remove_columns("id").add_column("id", new_ids, feature=Value("string"))
    return out, no_trace
