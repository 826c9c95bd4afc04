"""Accuracy reward: is the completion's final answer the gold answer (math-verify, multiple choice).

Two entry points over the same scorer:
- `score_accuracy(completions, solutions, choices)`: a plain list-in, list-out API for offline
  use (pass-rate filtering, distillation, eval);
- `AccuracyReward` / `accuracy_reward`: TRL's reward-function convention for `GRPOTrainer`.

Scoring runs in a shared `ScoringPool` (parallel across cores, hard per-item deadline); an item
that times out, raises or kills its worker scores 0.0 and is counted, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from skywork_rl.rewards.completions import completion_text
from skywork_rl.rewards.pool import ScoringPool, default_num_workers, shared_pool
from skywork_rl.rewards.verify import init_worker, score_item

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0


@dataclass
class AccuracyResult:
    """Scores (None where the item had no gold answer) and the counts behind the metrics."""

    scores: list[float | None]
    failures: int  # timed out, raised, or killed its worker
    no_answer: int  # the completion gave no extractable final answer
    errors: dict[int, str]


def score_accuracy_detailed(
    completions: Sequence[Any],
    solutions: Sequence[str | None],
    choices: Sequence[Sequence[str] | None] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    num_workers: int | None = None,
    strict: bool = True,
) -> AccuracyResult:
    """Score a batch and report failures; see `score_accuracy`.

    ``num_workers=0`` scores in this process, serially and without a deadline (debugging only).
    """
    if len(completions) != len(solutions):
        raise ValueError(
            f"score_accuracy: {len(completions)} completions but {len(solutions)} solutions; "
            "pass one gold answer per completion (repeat each for its generations)"
        )
    if choices is not None and len(choices) != len(completions):
        raise ValueError(f"score_accuracy: {len(choices)} choices lists for {len(completions)} completions")
    scores: list[float | None] = [None] * len(completions)
    todo = [i for i, s in enumerate(solutions) if s is not None and str(s).strip()]
    items = [
        (
            completion_text(completions[i]),
            str(solutions[i]),
            list(choices[i] or []) if choices else None,
            strict,
        )
        for i in todo
    ]
    workers = default_num_workers() if num_workers is None else num_workers
    values, errors = _run(items, timeout_s, workers)
    no_answer = 0
    item_errors: dict[int, str] = {}
    for position, index in enumerate(todo):
        value = values[position]
        if value is None:
            scores[index] = 0.0
            item_errors[index] = errors.get(position, "no result")
            continue
        scores[index], answered = value
        no_answer += not answered
    for index, error in item_errors.items():
        logger.debug("accuracy reward item %d failed: %s", index, error)
    return AccuracyResult(scores=scores, failures=len(item_errors), no_answer=no_answer, errors=item_errors)


def _run(items: list[tuple[Any, ...]], timeout_s: float, workers: int) -> tuple[list[Any], dict[int, str]]:
    if not items:
        return [], {}
    if workers == 0:
        init_worker()
        values: list[Any] = []
        errors: dict[int, str] = {}
        for position, item in enumerate(items):
            try:
                values.append(score_item(*item))
            except Exception as error:  # noqa: BLE001 - one item's failure is its 0.0
                values.append(None)
                errors[position] = f"{type(error).__name__}: {error}"
        return values, errors
    try:
        result = shared_pool(score_item, workers, timeout_s, initializer=init_worker).map(items)
    except Exception as error:  # noqa: BLE001 - the pool itself broke: score 0.0, loudly, never raise
        logger.error("accuracy reward pool failed (%s); scoring this batch 0.0", error)
        _drop_pool(workers, timeout_s)
        return [None] * len(items), {i: f"pool failed: {error}" for i in range(len(items))}
    return result.values, result.errors


def _drop_pool(workers: int, timeout_s: float) -> None:
    from skywork_rl.rewards import pool as pool_module

    key = (score_item, workers, timeout_s, init_worker)
    broken: ScoringPool | None = pool_module._POOLS.pop(key, None)
    if broken is not None:
        broken.close()


def score_accuracy(
    completions: Sequence[Any],
    solutions: Sequence[str | None],
    choices: Sequence[Sequence[str] | None] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    num_workers: int | None = None,
    strict: bool = True,
) -> list[float]:
    """1.0 where a completion's final answer matches its gold answer, else 0.0.

    Args:
        completions: strings or TRL conversational completions.
        solutions: gold answers (``"72"``, GSM8K ``"... #### 72"``, ``"\\boxed{\\frac12}"``,
            a letter for multiple choice). A missing gold scores 0.0 here.
        choices: per item, option texts (letter A = first) or None.
        timeout_s: per-item deadline; an item past it scores 0.0.
        num_workers: worker processes (default: usable cores // ``LOCAL_WORLD_SIZE``, at least 1).
        strict: extract the final answer strictly (only after ``</think>``; no "last number
            anywhere" fallback), as the GRPO reward does; ``False`` for the lenient extractor
            (see `skywork_rl.rewards.extract.extract_final_answer`).
    """
    result = score_accuracy_detailed(completions, solutions, choices, timeout_s, num_workers, strict)
    return [0.0 if s is None else s for s in result.scores]


class AccuracyReward:
    """TRL reward function: ``reward(completions=..., solution=..., choices=..., log_metric=...)``.

    Returns None for rows without a gold answer (TRL treats None as "does not apply", so a
    reward model or another function can score those rows). Logs
    ``rewards/<name>/failures`` and ``rewards/<name>/no_answer`` (counts in the batch) through
    TRL's ``log_metric`` when given.
    """

    def __init__(
        self,
        name: str = "accuracy",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        num_workers: int | None = None,
        strict: bool = True,
    ) -> None:
        self.__name__ = name
        self.timeout_s, self.num_workers, self.strict = timeout_s, num_workers, strict

    def __call__(
        self,
        completions: Sequence[Any],
        solution: Sequence[str | None] | None = None,
        choices: Sequence[Sequence[str] | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if solution is None:
            raise ValueError(
                f"reward '{self.__name__}': the dataset has no 'solution' column; the accuracy reward "
                "needs the gold answer (see skywork_rl/schema.py)"
            )
        result = score_accuracy_detailed(
            completions, solution, choices, self.timeout_s, self.num_workers, self.strict
        )
        if log_metric is not None:
            log_metric(f"rewards/{self.__name__}/failures", float(result.failures))
            log_metric(f"rewards/{self.__name__}/no_answer", float(result.no_answer))
        return result.scores


accuracy_reward = AccuracyReward()
