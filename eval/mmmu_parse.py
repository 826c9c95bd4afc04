"""MMMU's official parser on one response, as the scoring workers run it (`eval.deadline`).

Without upstream's random guess (`parse_without_guess`): the parent draws those in the official
order (`eval.mmmu.score_mmmu_outputs`). ``reasoning=True`` reads a reasoning model's final answer.
"""

from __future__ import annotations

import random
from typing import Any

from eval.math_scoring import Verdict
from eval.mmmu_official import parse_multi_choice_response, parse_open_response
from skywork_rl.rewards.extract import last_boxed, strip_think

MULTIPLE_CHOICE = "multiple-choice"


class _NoGuess(random.Random):
    """A generator whose `choice` declines: the official parser then returns None instead of guessing."""

    def choice(self, seq: Any) -> Any:  # noqa: D102 - see class docstring
        return None


def _reasoning_choice(answer: str, all_choices: list[str], index2ans: dict[str, str]) -> str | None:
    """A letter from an extracted final answer: the letter itself, an option's exact text, else the
    official parser without its random guess."""
    bare = answer.strip().strip("().:*$ ").upper()
    if bare in all_choices:
        return bare
    text = answer.strip().strip("$ ").lower()
    for letter, option in index2ans.items():
        if str(option).strip().lower() == text:
            return letter
    return parse_multi_choice_response(answer, all_choices, index2ans, _NoGuess())


def parse_item(item: dict[str, Any], rng: random.Random, *, reasoning: bool = False) -> Any:
    """The parsed prediction of one output entry: a letter, or a list of normalised open answers.

    ``reasoning=False``: upstream's parser on the whole response. ``reasoning=True`` (the
    default of `eval`): a response whose answer part (after ``</think>``) holds a ``\\boxed{}`` is
    read from its last box (a letter, an option's exact text, or an open answer parsed by the
    official open-answer rules); any other response is the official parser's, on the text
    after ``</think>`` (a reasoning trace is full of letters and numbers that are not the answer)
    or, with no ``</think>`` either, on the whole response — so on such plain responses the
    two modes agree item for item, string forms included (``"1/4"`` keeps ``'1/4'`` beside the
    numbers), as `tests/eval/test_mmmu_scoring.py` checks on the 900 official example outputs.
    """
    response = str(item["response"])
    is_mc = item["question_type"] == MULTIPLE_CHOICE
    if reasoning:
        answer_part = strip_think(response)
        boxed = last_boxed(answer_part)
        if boxed:
            if not is_mc:
                return parse_open_response(boxed)
            letter = _reasoning_choice(boxed, item["all_choices"], item["index2ans"])
            if letter is not None:
                return letter
        response = answer_part
    if is_mc:
        return parse_multi_choice_response(response, item["all_choices"], item["index2ans"], rng)
    return parse_open_response(response)


def parse_without_guess(item: dict[str, Any], *, reasoning: bool = False) -> Any:
    """`parse_item` with upstream's random fallback declined: None where upstream would guess.

    Runs in `eval.deadline` workers; the parent draws the guesses in the official order
    (`eval.mmmu.score_mmmu_outputs`)."""
    return parse_item(item, _NoGuess(), reasoning=reasoning)


def parse_response(response: str, meta: dict[str, Any], *, reasoning: bool = False) -> Verdict:
    """The `eval.deadline` worker's scorer: the parse without the guess, left to the parent to judge."""
    return Verdict(parse_without_guess({**meta, "response": response}, reasoning=reasoning), None)
