"""What the answer judge is asked and how its reply is read (pure strings, no model).

R1V3 (arXiv 2507.06167) counts an answer correct when an LLM verifier or the rule checker accepts
it; the paper gives neither the verifier's prompt nor its parsing, so both are ours and explicit:

- The judge sees the *extracted* final answer (the rule checker's strict extraction: only text
  after ``</think>``, the last ``\\boxed{}`` first), the gold answer and, for multiple choice, the
  options. Never the reasoning: a policy cannot argue with it, and verdicts cache per (answer, gold).
- The reply must start with YES or NO (case-insensitive, after an optional ``<think>...</think>``
  block and leading markdown or quotes). Anything else is unparsable: counted, never guessed.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from skywork_rl.rewards.extract import extract_choice_letter, extract_final_answer, parse_gold, strip_think

DEFAULT_JUDGE_PROMPT = (
    "You are checking a student's final answer against the reference answer of a problem.\n"
    "{options}"
    "Reference answer: {gold}\n"
    "Student's final answer: {answer}\n\n"
    "Are the two answers equivalent (the same value, expression, set, interval or option, possibly "
    "written differently: notation, simplification, units spelled out)? Reply with one word: YES or NO."
)
PLACEHOLDERS = frozenset({"answer", "gold", "options"})
REQUIRED_PLACEHOLDERS = frozenset({"answer", "gold"})

_VERDICT_RE = re.compile(r"[\s*_`\"'(\[]*(yes|no)(?![a-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeQuery:
    """One question to the judge: an extracted answer, its gold answer, the options if any."""

    answer: str
    gold: str
    options: tuple[str, ...] = ()


def check_template(template: str, key: str = "rewards.verifier_prompt") -> None:
    """Refuse a template the judge cannot be asked with: unknown or missing placeholders."""
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as error:
        raise ValueError(f"{key}: not a format string ({error}); write literal braces as {{{{ }}}}") from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"{key}: unknown placeholder(s) {sorted(unknown)}; use {sorted(PLACEHOLDERS)} "
            "(literal braces, e.g. LaTeX, are written {{ }})"
        )
    missing = REQUIRED_PLACEHOLDERS - names
    if missing:
        raise ValueError(f"{key}: the template must contain {sorted('{' + m + '}' for m in missing)}")


def render_judge_prompt(template: str, query: JudgeQuery) -> str:
    """The user message the judge gets for ``query``."""
    options = ""
    if query.options:
        lines = "".join(f"{chr(ord('A') + i)}. {text}\n" for i, text in enumerate(query.options))
        options = f"Options:\n{lines}"
    return template.format(answer=query.answer, gold=query.gold, options=options)


def parse_verdict(reply: str) -> bool | None:
    """True for YES, False for NO, None when the reply does not start with either (unparsable)."""
    match = _VERDICT_RE.match(strip_think(reply))
    if match is None:
        return None
    return match.group(1).lower() == "yes"


def _is_letter(gold: str) -> bool:
    letter = gold.strip("() .")
    return len(letter) == 1 and "A" <= letter <= "Z"


def judge_query(completion: str, solution: str, choices: Sequence[str] | None) -> JudgeQuery | None:
    """The query for one completion, or None when it states no final answer (nothing to judge).

    The answer is read exactly as the rule checker reads it (`skywork_rl.rewards.verify.score_item`).
    """
    gold = parse_gold(solution)
    answer = extract_final_answer(completion, strict=True)
    if answer is None and (choices or _is_letter(gold)):
        answer = extract_choice_letter(completion)
    if answer is None:
        return None
    return JudgeQuery(answer=answer.strip(), gold=gold.strip(), options=tuple(choices or ()))
