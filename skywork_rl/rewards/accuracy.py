"""Accuracy reward: is the completion's final answer the gold answer (math-verify, multiple choice).

Two entry points over the same scorer:
- `score_accuracy(completions, solutions, choices)`: a plain list-in, list-out API for offline
  use (pass-rate filtering, distillation, eval);
- `AccuracyReward` / `accuracy_reward`: TRL's reward-function convention for `GRPOTrainer`.

Scoring runs in a shared `ScoringPool` (parallel across cores, hard per-item deadline, optional
batch budget). An item that times out, raises, kills its worker or is left unscored when the
batch budget runs out scores 0.0 and is counted as a failure, never raised.

A pool whose workers cannot start is a different matter: it says nothing about the answers, so
scoring them 0.0 would train on garbage while looking healthy. The batch is then scored in this
process instead (same deadline and budget, by SIGALRM; logged once), and where no deadline can be
enforced in process (called off the main thread) the call raises `SkyworkError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skywork_rl.rewards.batch import MapResult
from skywork_rl.rewards.completions import completion_text
from skywork_rl.rewards.pool import default_num_workers, map_with_deadlines
from skywork_rl.rewards.verify import init_worker, score_item

if TYPE_CHECKING:
    from skywork_rl.rewards.config import RewardArguments

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
# Budget of one training-reward batch. Four per-item deadlines: every worker can still take four
# legitimately slow answers to their own deadline, while ordinary batches finish in well under a
# second (thousands of completions/s per worker, benchmarks/reward_throughput.py). Only an
# adversarial batch reaches it, and then it stalls a GRPO step by ~20 s, not minutes.
DEFAULT_BATCH_BUDGET_S = 20.0


@dataclass
class AccuracyResult:
    """Scores (None where the item had no gold answer) and the counts behind the metrics."""

    scores: list[float | None]
    failures: int  # timed out, raised, killed its worker, or left unscored by the batch budget
    no_answer: int  # the completion gave no extractable final answer (not a failure)
    errors: dict[int, str]
    out_of_budget: int = 0  # of the failures, those the batch budget ran out on


def score_accuracy_detailed(
    completions: Sequence[Any],
    solutions: Sequence[str | None],
    choices: Sequence[Sequence[str] | None] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    num_workers: int | None = None,
    strict: bool = True,
    batch_budget_s: float | None = None,
) -> AccuracyResult:
    """Score a batch and report failures: 1.0 where a completion's final answer matches its gold
    answer, 0.0 where it does not, None where the gold answer is missing.

    Args:
        completions: strings or TRL conversational completions.
        solutions: gold answers (``"72"``, GSM8K ``"... #### 72"``, ``"\\boxed{\\frac12}"``,
            a letter for multiple choice). A missing gold scores None.
        choices: per item, option texts (letter A = first) or None.
        timeout_s: per-item deadline; an item past it scores 0.0.
        num_workers: worker processes (default: usable cores // ``LOCAL_WORLD_SIZE``, at least 1);
            0 scores in this process, serially and without a deadline or budget (debugging only).
        strict: extract the final answer strictly (only after ``</think>``; no "last number
            anywhere" fallback), as the GRPO reward does; ``False`` for the lenient extractor
            (see `skywork_rl.rewards.extract.extract_final_answer`).
        batch_budget_s: wall-clock budget of the whole call; completions still unscored when it
            runs out score 0.0. None (the default here, for offline batches of any size): only
            the per-item deadline.

    Workers are fresh interpreters, so this works from any script (``python -`` included); if
    they cannot start, the batch is scored in this process (see the module docstring).
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
    result = _run(items, timeout_s, workers, batch_budget_s)
    values, errors = result.values, result.errors
    if result.out_of_budget:
        logger.warning(
            "accuracy scoring: the batch budget of %gs ran out; %d of %d completions were not scored "
            "(0.0, counted as failures). If they are legitimate, raise batch_budget_s (recipe: "
            "rewards.batch_budget_s).",
            batch_budget_s,
            result.out_of_budget,
            len(items),
        )
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
    return AccuracyResult(
        scores=scores,
        failures=len(item_errors),
        no_answer=no_answer,
        errors=item_errors,
        out_of_budget=result.out_of_budget,
    )


def _run(items: list[tuple[Any, ...]], timeout_s: float, workers: int, budget_s: float | None) -> MapResult:
    return map_with_deadlines(
        score_item,
        items,
        num_workers=workers,
        timeout_s=timeout_s,
        budget_s=budget_s,
        initializer=init_worker,
        what="accuracy scoring",
    )


def score_accuracy(
    completions: Sequence[Any],
    solutions: Sequence[str | None],
    choices: Sequence[Sequence[str] | None] | None = None,
    **options: Any,
) -> list[float]:
    """1.0 where a completion's final answer matches its gold answer, else 0.0 (a missing gold
    too): `score_accuracy_detailed`'s scores, with its arguments and defaults (``options``:
    timeout_s, num_workers, strict, batch_budget_s).
    """
    result = score_accuracy_detailed(completions, solutions, choices, **options)
    return [0.0 if s is None else s for s in result.scores]


def gold_answers(reward: str, kind: str, solution: Sequence[str | None] | None) -> Sequence[str | None]:
    """The batch's ``solution`` column, which a reward that verifies answers cannot do without: a
    dataset lacking it is an error naming the reward (TRL passes the columns a dataset has)."""
    if solution is None:
        raise ValueError(
            f"reward '{reward}': the dataset has no 'solution' column; the {kind} reward needs the gold "
            "answer (see skywork_rl/data/schema.py)"
        )
    return solution


class AccuracyReward:
    """TRL reward function: ``reward(completions=..., solution=..., choices=..., log_metric=...)``.

    Returns None for rows without a gold answer (TRL treats None as "does not apply", so a
    reward model or another function can score those rows). Logs
    ``rewards/<name>/failures`` and ``rewards/<name>/no_answer`` (counts in the batch) through
    TRL's ``log_metric`` when given. A batch has a wall-clock budget (``batch_budget_s``,
    default `DEFAULT_BATCH_BUDGET_S`; None: none): completions still unscored when it runs out
    score 0.0 and count as failures, so one adversarial batch cannot stall a step for minutes.

    A reward that builds on the rule check (the ``verifier``) subclasses it and overrides
    `scores`, which turns the rule result into the batch's rewards.
    """

    kind = "accuracy"  # the reward named in the missing-``solution`` error

    def __init__(
        self,
        name: str = "accuracy",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        num_workers: int | None = None,
        strict: bool = True,
        batch_budget_s: float | None = DEFAULT_BATCH_BUDGET_S,
    ) -> None:
        self.__name__ = name
        self.timeout_s, self.num_workers, self.strict = timeout_s, num_workers, strict
        self.batch_budget_s = batch_budget_s

    def __call__(
        self,
        completions: Sequence[Any],
        solution: Sequence[str | None] | None = None,
        choices: Sequence[Sequence[str] | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        solution = gold_answers(self.__name__, self.kind, solution)
        rules = score_accuracy_detailed(
            completions, solution, choices, self.timeout_s, self.num_workers, self.strict, self.batch_budget_s
        )
        return self.scores(completions, solution, choices, rules, log_metric)

    def scores(
        self,
        completions: Sequence[Any],
        solution: Sequence[str | None],
        choices: Sequence[Sequence[str] | None] | None,
        rules: AccuracyResult,
        log_metric: Callable[[str, float], None] | None,
    ) -> list[float | None]:
        """The batch's rewards from the rule check's result `rules` (here: its scores, with its
        failure and no-answer counts logged)."""
        if log_metric is not None:
            log_metric(f"rewards/{self.__name__}/failures", float(rules.failures))
            log_metric(f"rewards/{self.__name__}/no_answer", float(rules.no_answer))
        return rules.scores


accuracy_reward = AccuracyReward()


def build_accuracy(args: RewardArguments, device: Any = None) -> AccuracyReward:
    """The ``accuracy`` reward of a recipe's ``rewards:`` options (registered in `skywork_rl.rewards.registry`)."""
    # Strict extraction: a training reward that also searched the reasoning, or took the last
    # number anywhere, would pay a policy for listing candidates.
    return AccuracyReward(
        timeout_s=args.timeout_s,
        num_workers=args.num_workers,
        strict=True,
        batch_budget_s=args.batch_budget_s,
    )
