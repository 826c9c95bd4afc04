"""Format rewards: R1V-style ``<think> reasoning </think>`` followed by one final answer.

Linear-time string checks (counts and finds, no regex over the whole text), so they run in the
trainer process without a pool even on megabyte completions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skywork_rl.rewards.completions import completion_text
from skywork_rl.rewards.extract import extract_final_answer, last_boxed

if TYPE_CHECKING:
    from skywork_rl.rewards.config import RewardArguments


@dataclass(frozen=True)
class FormatSpec:
    """What a well-formed completion looks like.

    Attributes:
        think_open / think_close: the reasoning tags.
        answer_open / answer_close: optional tags the answer must sit in (e.g. ``<answer>``).
        require_boxed: the answer must contain exactly one ``\\boxed{}``.
        open_in_prompt: the chat template already emits ``think_open`` in the generation prompt
            (R1V2/QwQ-style templates), so completions start inside the reasoning.
    """

    think_open: str = "<think>"
    think_close: str = "</think>"
    answer_open: str | None = None
    answer_close: str | None = None
    require_boxed: bool = True
    open_in_prompt: bool = False


def _split(text: str, spec: FormatSpec) -> tuple[str, str] | None:
    """(reasoning, answer) when the think block is well formed, else None."""
    stripped = text.strip()
    if stripped.count(spec.think_close) != 1:
        return None
    opens = stripped.count(spec.think_open)
    if spec.open_in_prompt:
        if opens != 0:
            return None
        body = stripped
    else:
        if opens != 1 or not stripped.startswith(spec.think_open):
            return None
        body = stripped[len(spec.think_open) :]
    reasoning, answer = body.split(spec.think_close, 1)
    return reasoning.strip(), answer.strip()


def _answer_ok(answer: str, spec: FormatSpec) -> bool:
    if spec.answer_open and spec.answer_close:
        if not (answer.startswith(spec.answer_open) and answer.endswith(spec.answer_close)):
            return False
        if answer.count(spec.answer_open) != 1 or answer.count(spec.answer_close) != 1:
            return False
        answer = answer[len(spec.answer_open) : -len(spec.answer_close)].strip()
    if not answer:
        return False
    if spec.require_boxed:
        return answer.count("\\boxed") == 1 and last_boxed(answer) is not None
    return True


def strict_format_score(text: str, spec: FormatSpec = FormatSpec()) -> float:
    """1.0 when the text is exactly: think block with non-empty reasoning, then one answer."""
    parts = _split(text, spec)
    if parts is None or not parts[0]:
        return 0.0
    return 1.0 if _answer_ok(parts[1], spec) else 0.0


def soft_format_score(text: str, spec: FormatSpec = FormatSpec()) -> float:
    """Partial credit: 0.5 for a well-formed think block, 0.75 when an answer follows it but not
    in the required form (any extractable answer: anchored or a final number), 1.0 for the strict
    format. A policy early in training gets a gradient toward the format before it boxes reliably.
    """
    parts = _split(text, spec)
    if parts is None or not parts[0]:
        return 0.0
    answer = parts[1]
    if _answer_ok(answer, spec):
        return 1.0
    return 0.75 if answer and extract_final_answer(answer) is not None else 0.5


class FormatReward:
    """TRL reward function wrapping `strict_format_score` or `soft_format_score`."""

    def __init__(self, name: str = "format", spec: FormatSpec = FormatSpec(), soft: bool = False) -> None:
        self.__name__ = name
        self.spec, self.soft = spec, soft

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> list[float]:
        score = soft_format_score if self.soft else strict_format_score
        return [score(completion_text(c), self.spec) for c in completions]


format_reward = FormatReward()
soft_format_reward = FormatReward(name="format_soft", soft=True)


def _format_spec(args: RewardArguments) -> FormatSpec:
    answer_tags = args.format_answer_tags or [None, None]
    return FormatSpec(
        think_open=args.format_think_tags[0],
        think_close=args.format_think_tags[1],
        answer_open=answer_tags[0],
        answer_close=answer_tags[1],
        require_boxed=args.format_require_boxed,
        open_in_prompt=args.format_open_in_prompt,
    )


def build_format(args: RewardArguments, device: Any = None) -> FormatReward:
    """The ``format`` reward of a recipe's ``rewards.format_*`` options."""
    return FormatReward(name="format", spec=_format_spec(args))


def build_format_soft(args: RewardArguments, device: Any = None) -> FormatReward:
    """The ``format_soft`` reward of a recipe's ``rewards.format_*`` options."""
    return FormatReward(name="format_soft", spec=_format_spec(args), soft=True)
