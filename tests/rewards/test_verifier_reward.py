"""R1V3's verifier reward: rule checker OR judge, with a scripted judge that pins the logic and metrics."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from skywork_rl.errors import SkyworkError
from skywork_rl.rewards.config import RewardArguments
from skywork_rl.rewards.judge_prompt import parse_verdict
from skywork_rl.rewards.registry import build_reward_funcs
from skywork_rl.rewards.verifier import VerifierReward

_QUESTION = re.compile(r"Reference answer: (.*)\nStudent's final answer: (.*)\n")


class ScriptedJudge:
    """A judge backend (the `GenerationBackend` protocol) that answers by rule: YES when the answer
    equals the gold (case-insensitively), NO otherwise; `replies` overrides by (answer, gold). With a
    `gate`, every call blocks until the gate opens (a judge slower than any budget)."""

    def __init__(
        self, replies: dict[tuple[str, str], str] | None = None, gate: threading.Event | None = None
    ):
        self.replies, self.gate = replies or {}, gate
        self.calls: list[list[str]] = []

    def generate(
        self, rows: Sequence[dict[str, Any]], *, num_generations: int = 1, **sampling: Any
    ) -> list[list[str]]:
        questions = [row["prompt"][0]["content"] for row in rows]
        self.calls.append(questions)
        if self.gate is not None:
            self.gate.wait(timeout=60)
        replies = []
        for question in questions:
            gold, answer = _QUESTION.search(question).groups()
            default = "YES" if answer.casefold() == gold.casefold() else "NO"
            replies.append([self.replies.get((answer, gold), default)] * num_generations)
        return replies


def _answer(text: str) -> str:
    return f"<think>reasoning</think> {text}"


def _verifier(judge: ScriptedJudge, **kwargs: Any) -> VerifierReward:
    return VerifierReward(judge, num_workers=0, **kwargs)  # rules in process: no worker start-up in tests


def test_verifier_accepts_when_the_rules_or_the_judge_accept_and_logs_each_side() -> None:
    judge = ScriptedJudge({("twelve", "12"): "YES"})
    completions = [
        _answer("\\boxed{4}"),  # rules yes, judge yes
        _answer("\\boxed{twelve}"),  # rules no (not a number math-verify reads), judge yes
        _answer("\\boxed{0.5}"),  # rules yes (math-verify: 0.5 = 1/2), this judge no
        _answer("\\boxed{5}"),  # both no
        _answer("I do not know"),  # no final answer: the judge is not asked
        _answer("\\boxed{7}"),  # no gold answer: does not apply
    ]
    metrics: dict[str, float] = {}
    scores = _verifier(judge)(
        completions=completions,
        solution=["4", "12", "\\frac{1}{2}", "4", "4", None],
        log_metric=metrics.__setitem__,
    )
    assert scores == [1.0, 1.0, 1.0, 0.0, 0.0, None]
    assert {k.removeprefix("rewards/verifier/"): v for k, v in metrics.items()} == {
        "both": 1.0,
        "judge_only": 1.0,
        "rule_only": 1.0,
        "failures": 0.0,
        "no_answer": 1.0,
        "judge_unparsable": 0.0,
        "judge_out_of_budget": 0.0,
        "judge_cached": 0.0,
    }
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 4  # one backend call for the batch


def test_the_judge_is_asked_once_per_answer_and_gold() -> None:
    judge = ScriptedJudge({("three", "3"): "YES"})
    reward = _verifier(judge)
    completions = [_answer("\\boxed{3}")] * 4 + [_answer("\\boxed{three}")] * 4
    first: dict[str, float] = {}
    assert reward(completions=completions, solution=["3"] * 8, log_metric=first.__setitem__) == [1.0] * 8
    assert [len(questions) for questions in judge.calls] == [2]
    again: dict[str, float] = {}
    assert reward(completions=completions, solution=["3"] * 8, log_metric=again.__setitem__) == [1.0] * 8
    assert len(judge.calls) == 1  # every verdict came from the cache
    assert again["rewards/verifier/judge_cached"] == 8.0 and again["rewards/verifier/judge_only"] == 4.0


def test_an_unparsable_verdict_is_counted_and_leaves_the_answer_to_the_rules() -> None:
    judge = ScriptedJudge({("5", "4"): "Probably not.", ("4", "4"): "Hmm, let me see"})
    metrics: dict[str, float] = {}
    scores = _verifier(judge)(
        completions=[_answer("\\boxed{5}"), _answer("\\boxed{4}")],
        solution=["4", "4"],
        log_metric=metrics.__setitem__,
    )
    assert scores == [0.0, 1.0]
    assert metrics["rewards/verifier/judge_unparsable"] == 2.0
    assert metrics["rewards/verifier/failures"] == 1.0  # the rules rejected it and the judge did not decide
    assert metrics["rewards/verifier/rule_only"] == 1.0


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("YES", True),
        ("no", False),
        ("**Yes**, they match.", True),
        ("  'No.'", False),
        ("<think>0.5 is 1/2</think>\nYES", True),
        ("Yesterday", None),
        ("The answer is yes", None),
        ("<think>never closed", None),
        ("", None),
    ],
)
def test_judge_replies_are_read_from_their_first_word_or_not_at_all(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


def test_a_judge_out_of_budget_counts_failures_and_its_late_verdicts_fill_the_cache() -> None:
    gate = threading.Event()
    judge = ScriptedJudge({("twelve", "12"): "YES"}, gate=gate)
    reward = _verifier(judge, budget_s=0.2)
    metrics: dict[str, float] = {}
    assert reward(
        completions=[_answer("\\boxed{twelve}")], solution=["12"], log_metric=metrics.__setitem__
    ) == [0.0]
    assert (
        metrics["rewards/verifier/judge_out_of_budget"] == 1.0 and metrics["rewards/verifier/failures"] == 1.0
    )
    # While that call is still running, a new question waits for it instead of starting a second one.
    assert reward(
        completions=[_answer("\\boxed{thirteen}")], solution=["13"], log_metric=metrics.__setitem__
    ) == [0.0]
    assert metrics["rewards/verifier/judge_out_of_budget"] == 1.0 and len(judge.calls) == 1
    gate.set()
    reward.judge.drain()
    assert reward(
        completions=[_answer("\\boxed{twelve}")], solution=["12"], log_metric=metrics.__setitem__
    ) == [1.0]
    assert metrics["rewards/verifier/judge_cached"] == 1.0 and len(judge.calls) == 1


def test_a_failing_judge_raises_naming_its_settings() -> None:
    class Broken:
        def generate(self, rows: Sequence[dict[str, Any]], **sampling: Any) -> list[list[str]]:
            raise RuntimeError("CUDA error: device-side assert triggered")

    with pytest.raises(
        SkyworkError, match=r"judge model failed \(RuntimeError: CUDA error.*rewards.verifier_model"
    ):
        VerifierReward(Broken(), num_workers=0)(completions=[_answer("\\boxed{1}")], solution=["1"])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Is {answer} right?", r"must contain \['\{gold\}'\]"),
        ("Question: {question}\n{answer} vs {gold}", r"unknown placeholder\(s\) \['question'\]"),
        ("\\frac{1}{2}: {answer} vs {gold}", r"unknown placeholder\(s\) \['1', '2'\]"),
    ],
)
def test_a_judge_prompt_with_wrong_placeholders_is_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"rewards.verifier_prompt: .*{message}"):
        RewardArguments(verifier_prompt=template)


def test_the_verifier_is_registered_and_needs_a_judge_model() -> None:
    with pytest.raises(ValueError, match="rewards.verifier_model is not set"):
        build_reward_funcs(RewardArguments(reward_funcs=["verifier", "format"]))
    funcs, weights = build_reward_funcs(
        RewardArguments(
            reward_funcs=["verifier", "format"], reward_weights=[0.8, 0.2], verifier_model="any/judge"
        )
    )
    assert [f.__name__ for f in funcs] == ["verifier", "format"] and weights == [0.8, 0.2]
