"""Which scored responses of one prompt become (chosen, rejected) pairs, by `PairRules.criterion`.

Pure selection over per-response verdicts, scores and texts (`data_prep.preference_pairs` reads
the rows, deduplicates the pairs and builds the dataset). A prompt that yields no candidate pair
counts one reason in ``dropped``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from data_prep.preference_pairs import PairRules


def normalized(text: str) -> str:
    """Whitespace-normalised text: responses that differ only in spacing are the same response."""
    return " ".join(text.split())


def is_chosen(correct: bool | None, score: float | None, rules: PairRules) -> bool:
    """Whether a response may be chosen under the verdict/threshold criteria."""
    if rules.criterion == "verified":
        return correct is True
    if rules.criterion == "reward":
        return score is not None and score >= rules.min_chosen_score  # type: ignore[operator]
    high_enough = rules.min_chosen_score is None or (score is not None and score >= rules.min_chosen_score)
    return correct is True and high_enough


def is_rejected(correct: bool | None, score: float | None, rules: PairRules) -> bool:
    """Whether a response may be rejected under the verdict/threshold criteria."""
    low = rules.max_rejected_score is not None and score is not None and score <= rules.max_rejected_score
    if rules.criterion == "verified":
        return correct is False
    if rules.criterion == "reward":
        return low
    return correct is False or low


def rule_candidates(
    correct: list[bool | None], scores: list[float | None], rules: PairRules, dropped: Counter[str]
) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs under the verdict/threshold criteria, best chosen first."""
    n = len(correct)
    chosen_idx = [i for i in range(n) if is_chosen(correct[i], scores[i], rules)]
    rejected_idx = [i for i in range(n) if i not in chosen_idx and is_rejected(correct[i], scores[i], rules)]
    if not chosen_idx:
        dropped["no_chosen_candidate"] += 1
        return []
    if not rejected_idx:
        dropped["no_rejected_candidate"] += 1
        return []
    chosen_idx.sort(key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i))
    sign = -1.0 if rules.rejected_pick == "hardest" else 1.0
    rejected_idx.sort(key=lambda i: (scores[i] is None, sign * (scores[i] or 0.0), i))
    return list(zip(chosen_idx, rejected_idx, strict=False))[: rules.pairs_per_prompt]


def margin_candidates(
    texts: list[str], scores: list[float | None], rules: PairRules, dropped: Counter[str]
) -> list[tuple[int, int]]:
    """R1V2's pairs: the best-scored responses, each against a response at least ``min_margin`` lower.

    Chosen are taken best first; each gets, among the unused responses with a different text scored
    at least ``min_margin`` below it, the highest-scored one (``hardest``) or the lowest (``worst``).
    A chosen without such a response ends the prompt (lower chosen ones have fewer) and counts as
    ``margin_below_min``. Unscored responses (the reward model failed on them) take no part.
    """
    ranked = sorted((i for i, s in enumerate(scores) if s is not None), key=lambda i: (-scores[i], i))  # type: ignore[operator]
    if len(ranked) < 2:
        dropped["no_chosen_candidate" if not ranked else "no_rejected_candidate"] += 1
        return []
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for c in ranked:
        if len(pairs) >= rules.pairs_per_prompt:
            break
        if c in used:
            continue
        below = [
            r
            for r in ranked
            if r != c
            and r not in used
            and scores[c] - scores[r] >= rules.min_margin  # type: ignore[operator]
            and normalized(texts[r]) != normalized(texts[c])
        ]
        if not below:
            dropped["margin_below_min"] += 1
            break
        r = below[0] if rules.rejected_pick == "hardest" else below[-1]
        pairs.append((c, r))
        used.update((c, r))
    return pairs
