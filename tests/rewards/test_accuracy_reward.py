"""Accuracy reward: GSM8K golds, multiple choice, LaTeX equivalence, TRL calling convention."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from skywork_rl.rewards.accuracy import AccuracyReward, score_accuracy
from skywork_rl.rewards.config import RewardArguments
from skywork_rl.rewards.registry import get_reward
from skywork_rl.rewards.verify import answers_equal, init_worker, is_correct

# One shared pool for the module (same key -> same workers): spawning costs a second or two.
WORKERS = 2


def _gsm8k(shared_data: Path, n: int) -> list[dict[str, str]]:
    lines = (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[:n]
    return [json.loads(line) for line in lines]


def _reasoning(answer: str) -> str:
    return re.sub(r"<<[^>]*>>", "", answer.split("####")[0]).strip()


@pytest.mark.slow
def test_gsm8k_gold_matches_reasoning_ending_in_same_number_and_not_a_different_one(
    shared_data: Path,
) -> None:
    rows = _gsm8k(shared_data, 120)
    completions, solutions, expected = [], [], []
    for i, row in enumerate(rows):
        gold = row["answer"].split("####")[-1].strip().replace(",", "")
        wrong = str(int(float(gold)) + 1 + i % 7)
        reasoning = _reasoning(row["answer"])
        for value, right in ((gold, 1.0), (wrong, 0.0)):
            ending = [
                f"<think>\n{reasoning}\n</think>\nThe answer is \\boxed{{{value}}}.",
                f"{reasoning}\nSo she makes {value}",  # not boxed: the final number
                f"<think>{reasoning}</think>\nAnswer: ${value}",
            ][i % 3]
            completions.append(ending)
            solutions.append(row["answer"])
            expected.append(right)
    scores = score_accuracy(completions, solutions, num_workers=WORKERS)
    mismatches = [
        (c[-60:], s[-20:])
        for c, s, got, want in zip(completions, solutions, scores, expected, strict=True)
        if got != want
    ]
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize(
    ("answer", "gold", "choices", "correct"),
    [
        ("B", "B", ["1", "2", "3"], True),
        ("(B)", "B", ["1", "2", "3"], True),
        ("Option C", "B", ["1", "2", "3"], False),
        ("2", "B", ["1", "2", "3"], True),  # by option text
        ("B", "2", ["1", "2", "3"], True),  # gold given as the option text
        ("0.5", "B", ["1", "\\frac{1}{2}"], True),  # math-equivalent to option B's text
        ("(A) 1", "A", ["1", "2"], True),
        ("A", "B", None, False),  # letter gold without option texts
        ("(B)", "B", None, True),
        ("Paris", "A", ["paris", "london"], True),  # option text, case-insensitive
    ],
)
def test_multiple_choice_by_letter_or_option_text(
    answer: str, gold: str, choices: list[str] | None, correct: bool
) -> None:
    assert is_correct(answer, gold, choices) is correct


@pytest.mark.parametrize(
    ("pred", "gold", "equal"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\dfrac12", "\\frac{1}{2}", True),
        ("\\{2, 1\\}", "\\{1,2\\}", True),
        ("[1, 3)", "[1,3)", True),
        ("(1,3)", "[1,3)", False),
        ("8 \\text{ cm}", "8", True),
        ("\\$8", "8", True),
        ("1,200", "1200", True),
        ("72.0", "72", True),
        ("\\frac{\\sqrt2}{2}", "\\sqrt{2}/2", True),
        ("x=3", "3", True),
        ("10\\%", "10", True),
        ("17", "18", False),
        ("2,879,998", "2880000", False),  # close large numbers are still different
        ("12345678901234567891", "12345678901234567890", False),  # beyond float precision
        ("0.3333333", "0.3333334", True),  # within math-verify's 6-decimal rounding
        ("\\text{three}", "3", False),
        ("\\Delta", "\\delta", False),  # case matters for symbols (math-verify lower-cases them)
        ("X", "x", False),
        ("\\Pi", "\\pi", False),
        ("2X+1", "2x+1", False),
        ("\\text{Paris}", "paris", True),  # words may differ in case
        ("1E5", "1e5", True),  # exponent, not a symbol
    ],
)
def test_latex_answers_compare_by_math_equivalence(pred: str, gold: str, equal: bool) -> None:
    init_worker()
    assert answers_equal(pred, gold) is equal


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        ("<think>compute 3+4=7</think> I am not sure", "7"),
        ("<think>maybe 7, maybe 8</think> I cannot tell", "8"),
        ("I think 1 2 3 4 5 6 7 8", "8"),
    ],
)
def test_reward_does_not_pay_for_answers_in_the_reasoning_or_candidate_lists(
    completion: str, gold: str
) -> None:
    assert score_accuracy([completion], [gold], num_workers=0) == [0.0]
    assert AccuracyReward(num_workers=0)(completions=[completion], solution=[gold]) == [0.0]
    # The lenient extractor, kept for offline use, still reads them.
    assert score_accuracy([completion], [gold], num_workers=0, strict=False) == [1.0]


def test_multiple_choice_letters_match_case_insensitively_only_with_choices() -> None:
    assert is_correct("b", "B", ["1", "2"]) is True
    assert is_correct("X", "x") is False


def test_trl_reward_scores_conversational_completions_and_logs_counts() -> None:
    metrics: dict[str, float] = {}
    reward = AccuracyReward(num_workers=WORKERS)
    completions = [
        [{"role": "assistant", "content": "<think>2+2</think> \\boxed{4}"}],
        [{"role": "assistant", "content": "<think>hmm</think> I do not know"}],
        [{"role": "assistant", "content": "\\boxed{4}"}],
    ]
    scores = reward(
        prompts=["q"] * 3,
        completions=completions,
        completion_ids=[[0]] * 3,
        solution=["#### 4", "4", None],  # a row without gold does not apply: None
        log_metric=metrics.__setitem__,
    )
    assert scores == [1.0, 0.0, None]
    assert metrics == {"rewards/accuracy/failures": 0.0, "rewards/accuracy/no_answer": 1.0}
    assert reward.__name__ == "accuracy"


def test_score_accuracy_rejects_mismatched_lengths_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2 completions but 1 solutions"):
        score_accuracy(["a", "b"], ["1"], num_workers=0)


def test_in_process_mode_matches_pool_mode() -> None:
    completions = ["\\boxed{\\frac{2}{4}}", "The answer is 3", "(C)"]
    solutions = ["0.5", "#### 4", "C"]
    choices = [None, None, ["x", "y", "z"]]
    assert score_accuracy(completions, solutions, choices, num_workers=0) == [1.0, 0.0, 1.0]
    assert score_accuracy(completions, solutions, choices, num_workers=WORKERS) == [1.0, 0.0, 1.0]


def test_recipe_batch_budget_reaches_the_reward_and_must_cover_one_item_deadline() -> None:
    reward = get_reward("accuracy", RewardArguments(timeout_s=2.0, batch_budget_s=7.0))
    assert (reward.timeout_s, reward.batch_budget_s) == (2.0, 7.0)
    assert get_reward("accuracy", RewardArguments(batch_budget_s=None)).batch_budget_s is None
    with pytest.raises(ValueError, match=r"rewards.batch_budget_s \(2\) is below rewards.timeout_s \(5\)"):
        RewardArguments(timeout_s=5.0, batch_budget_s=2.0)


@pytest.mark.parametrize("kind", ["accuracy", "verifier"])
def test_a_dataset_without_a_solution_column_is_an_error_naming_the_reward(kind: str, tmp_path: Path) -> None:
    from skywork_rl.rewards.verifier import VerifierReward

    # the judge is loaded on first use: a folder that holds no model shows that it never is
    reward = AccuracyReward() if kind == "accuracy" else VerifierReward(str(tmp_path), num_workers=0)
    with pytest.raises(
        ValueError, match=rf"reward '{kind}': the dataset has no 'solution' column; the {kind}"
    ):
        reward(completions=["\\boxed{4}"])
