"""Every benchmark comparison under a per-item deadline, in the reward path's worker pool.

A benchmark answer is untrusted model output: ``\\boxed{10^{10^{10^{10}}}\\pi}`` makes sympy
evaluate a ten-billion-digit integer (OlympiadBench's judge never returns), math-verify hangs on
power towers (MathVerse free-form). So `eval` never compares in its own process: each item's
scorer runs in `skywork_rl.rewards.pool.ScoringPool` (the GRPO reward's pool: a worker per core, a
soft ``setitimer`` deadline, then SIGKILL and a fresh worker for an item stuck in C code). An item
past its deadline, or whose scorer raised, is scored wrong and counted with its reason
(``failures`` and ``per_item[].error`` in the report), never a hang and never a silent 0.

MMMU's official parser draws a seeded random letter for multiple-choice responses it cannot parse,
in a fixed order. Workers therefore parse without guessing (`eval.mmmu_parse.parse_without_guess`) and
the parent draws the guesses in the official order (`eval.mmmu.score_mmmu_outputs`), which yields
the same sequence as upstream's single-process loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from skywork_rl.rewards.pool import default_num_workers, map_with_deadlines
from skywork_rl.rewards.verify import answers_equal, init_worker

DEFAULT_TIMEOUT_S = 10.0

# one item: (response, meta) -> a verdict with ``parsed_pred`` and ``correct`` (`eval.math_scoring.Verdict`;
# ``correct`` None when the parent judges, as MMMU's seeded guesses need)
ItemScorer = Callable[[str, dict[str, Any]], Any]


@dataclass
class Scored:
    """One item's scorer output: what was read, whether it is right (None for MMMU, judged by the
    parent after the seeded guess), and why it could not be scored (``error``; then it is wrong)."""

    parsed_pred: Any
    correct: bool | None
    error: str | None = None


def score_one(scorer: ItemScorer, response: str, meta: dict[str, Any]) -> tuple[Any, Any]:
    """Worker entry point: ``(parsed_pred, correct)`` of one response, as the benchmark's `scorer`
    (a module-level function, or a `functools.partial` of one, so it pickles by reference) reads it."""
    verdict = scorer(response, meta)
    return verdict.parsed_pred, None if verdict.correct is None else bool(verdict.correct)


def init_scoring_worker() -> None:
    """Import the scorers and build both LaTeX parsers once per worker, before it reports ready.

    The first parse of each ANTLR grammar (sympy's for OlympiadBench, math-verify's for MathVerse)
    deserializes it, seconds on a loaded machine; paid here, it never eats an item's deadline."""
    init_worker()
    from eval.olympiad_judge import parse_latex  # defers sympy

    parse_latex("1")
    answers_equal("1", "x")


def score_with_deadline(
    benchmark: str,
    scorer: ItemScorer,
    jobs: Sequence[tuple[str, dict[str, Any]]],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    num_workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Scored]:
    """Score ``(response, meta)`` pairs of one benchmark with its `scorer`, each under ``timeout_s`` seconds.

    ``num_workers``: worker processes (default: this process's share of the cores). The pool is
    shared and kept for the process's life, so repeated calls (one per sample, per benchmark) pay
    the worker start-up once.
    """
    if not jobs:
        return []
    workers = default_num_workers() if num_workers is None else num_workers
    items = [(scorer, str(response), meta) for response, meta in jobs]
    result = map_with_deadlines(
        score_one,
        items,
        num_workers=workers,
        timeout_s=timeout_s,
        initializer=init_scoring_worker,
        what=f"eval scoring ({benchmark})",
        progress=progress,
    )
    out: list[Scored] = []
    for index, value in enumerate(result.values):
        error = result.errors.get(index)
        if error is not None or value is None:
            out.append(Scored(None, False, error or "no result"))
        else:
            out.append(Scored(value[0], value[1]))
    return out
