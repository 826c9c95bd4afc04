"""The verifier reward with a real (tiny, random-weight) judge model: the plumbing, not the verdicts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.rewards.judge_prompt import (
    DEFAULT_JUDGE_PROMPT,
    JudgeQuery,
    parse_verdict,
    render_judge_prompt,
)
from skywork_rl.rewards.verifier import VerifierReward


def _answer(text: str) -> str:
    return f"<think>reasoning</think> \\boxed{{{text}}}"


@pytest.mark.slow
def test_a_tiny_judge_model_is_asked_in_one_call_cached_and_bounded_in_time(tiny_internvl: Path) -> None:
    reward = VerifierReward(
        str(tiny_internvl), num_workers=0, budget_s=None, max_new_tokens=4, backend_kwargs={"batch_size": 2}
    )
    reward.judge.load()
    backend = reward.judge._backend
    generate, calls, gate = backend.generate, [], threading.Event()
    gate.set()

    def counted(rows: Any, **sampling: Any) -> Any:
        calls.append(len(rows))
        gate.wait(timeout=60)  # closed below: a judge slower than the budget
        return generate(rows, **sampling)

    backend.generate = counted
    answers = ["4", "5", "four"]
    completions, solutions = [_answer(a) for a in answers] * 2, ["4"] * 6
    metrics: dict[str, float] = {}
    scores = reward(completions=completions, solution=solutions, log_metric=metrics.__setitem__)
    assert calls == [3]  # one backend call; three distinct questions for six completions

    # What the random judge replies, read as the reward reads it (greedy: the same replies again).
    rows = [
        {
            "prompt": [
                {"role": "user", "content": render_judge_prompt(DEFAULT_JUDGE_PROMPT, JudgeQuery(a, "4"))}
            ]
        }
        for a in answers
    ]
    replies = generate(
        rows, num_generations=1, sampling=SamplingParams(max_new_tokens=4, temperature=0.0, top_p=1.0, seed=0)
    )
    verdicts = dict(zip(answers, (parse_verdict(r[0]) for r in replies), strict=True))
    expected = [1.0 if a == "4" or verdicts[a] else 0.0 for a in answers] * 2
    assert scores == expected
    assert metrics["rewards/verifier/judge_unparsable"] == 2 * sum(v is None for v in verdicts.values())
    assert metrics["rewards/verifier/failures"] == 2 * sum(verdicts[a] is None for a in ("5", "four"))
    assert metrics["rewards/verifier/both"] + metrics["rewards/verifier/rule_only"] == 2.0

    again: dict[str, float] = {}
    assert reward(completions=completions, solution=solutions, log_metric=again.__setitem__) == expected
    assert calls == [3] and again["rewards/verifier/judge_cached"] == 6.0

    reward.budget_s, late = 0.5, {}
    gate.clear()
    scores = reward(
        completions=[_answer("6"), _answer("4")], solution=["7", "4"], log_metric=late.__setitem__
    )
    assert scores == [0.0, 1.0]
    assert late["rewards/verifier/judge_out_of_budget"] == 1.0  # "4" vs "4" was cached; "6" vs "7" ran out
    assert late["rewards/verifier/failures"] == 1.0
    gate.set()
    reward.judge.drain()
    assert calls == [3, 1]


@pytest.mark.slow
def test_verifier_metrics_reach_the_logs_of_a_real_grpo_step(
    tiny_internvl: Path, grpo_step_logged_keys: Any
) -> None:
    from skywork_rl.rewards.config import RewardArguments

    logged = grpo_step_logged_keys(
        RewardArguments(
            reward_funcs=["verifier", "format_soft"],
            reward_weights=[0.8, 0.2],  # R1V3: 0.8 accuracy + 0.2 format
            verifier_model=str(tiny_internvl),
            verifier_max_new_tokens=4,
            num_workers=0,
        )
    )
    names = (
        "failures",
        "no_answer",
        "rule_only",
        "judge_only",
        "both",
        "judge_unparsable",
        "judge_out_of_budget",
    )
    assert {"rewards/verifier/mean", *(f"rewards/verifier/{n}" for n in names)} <= logged
