"""Preference-pair building on hand-made scored rollouts."""

from __future__ import annotations

import pytest
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from data_prep.preference_pairs import (
    PairRules,
    PreferencePairError,
    build_pairs,
    build_preference_dataset,
)
from skywork_rl.data.schema import PREFERENCE_COLUMNS, assistant_message, user_prompt


def _row(rid: str, completions, correct=None, scores=None, question: str = "What is 2+2?", images=None):
    row = {
        "prompt": user_prompt(question),
        "images": images or [],
        "solution": "4",
        "source": "hand",
        "id": rid,
        "completions": completions,
    }
    if correct is not None:
        row["correct"] = correct
    if scores is not None:
        row["rm_scores"] = scores
    return row


def test_verified_criterion_pairs_correct_over_wrong_and_prefers_high_scored_chosen():
    rows = [
        _row(
            "a",
            ["<think>2+2</think> 5", "<think>ok</think> 4", "<think>sure</think> 4"],
            [False, True, True],
            [0.3, 0.2, 0.9],
        )
    ]
    pairs, stats = build_pairs(rows, PairRules(criterion="verified"))
    assert stats.pairs == 1 and stats.prompts == 1
    assert pairs[0].chosen == "<think>sure</think> 4"  # the higher RM score among the correct ones
    assert pairs[0].rejected == "<think>2+2</think> 5"
    assert (pairs[0].chosen_score, pairs[0].rejected_score) == (0.9, 0.3)


def test_prompts_with_only_correct_or_only_wrong_rollouts_are_counted_by_reason():
    rows = [
        _row("all-right", ["4", "four is 4"], [True, True]),
        _row("all-wrong", ["5", "6"], [False, False]),
        _row("empty", [], []),
        _row("unverifiable", ["4", "5"], [None, None]),
    ]
    pairs, stats = build_pairs(rows, PairRules(criterion="verified"))
    assert pairs == []
    assert stats.dropped["no_rejected_candidate"] == 1
    assert stats.dropped["no_chosen_candidate"] == 2  # all-wrong and unverifiable
    assert stats.dropped["no_rollouts"] == 1
    assert stats.prompts == 4


def test_reward_criterion_uses_thresholds_and_min_margin():
    rules = PairRules(criterion="reward", min_chosen_score=0.7, max_rejected_score=0.4, min_margin=0.5)
    rows = [
        _row("wide", ["good", "bad"], scores=[0.95, 0.1]),
        _row("narrow", ["good", "meh"], scores=[0.75, 0.35]),  # margin 0.4 < 0.5
        _row("no-high", ["meh", "bad"], scores=[0.6, 0.1]),  # nothing reaches 0.7
    ]
    pairs, stats = build_pairs(rows, rules)
    assert [(p.chosen, p.rejected) for p in pairs] == [("good", "bad")]
    assert stats.dropped["margin_below_min"] == 1
    assert stats.dropped["no_chosen_candidate"] == 1


def test_hybrid_criterion_rejects_wrong_or_low_and_requires_correct_and_high_for_chosen():
    rules = PairRules(criterion="verified_and_reward", min_chosen_score=0.5, max_rejected_score=0.2)
    row = _row(
        "h",
        ["correct high", "correct low", "wrong high", "correct very low"],
        [True, True, False, True],
        [0.9, 0.3, 0.8, 0.1],
    )
    pairs, _ = build_pairs([row], PairRules(**{**rules.__dict__, "pairs_per_prompt": 3}))
    # Only "correct high" qualifies as chosen; "correct low" (0.3) is neither high nor low enough.
    assert [p.chosen for p in pairs] == ["correct high"]
    assert pairs[0].rejected == "wrong high"  # hardest negative first
    worst = PairRules(**{**rules.__dict__, "rejected_pick": "worst"})
    assert build_pairs([row], worst)[0][0].rejected == "correct very low"


def test_duplicate_pairs_across_rows_are_dropped_and_identical_texts_never_pair():
    rows = [
        _row("x1", ["4", "5"], [True, False]),
        _row("x2", ["4 ", "5"], [True, False]),  # same prompt, same texts up to whitespace
        _row("x3", ["4", "5"], [True, False], question="What is 3+1?"),  # different prompt: kept
        _row("x4", ["four", "four"], [True, False]),
    ]
    pairs, stats = build_pairs(rows, PairRules())
    assert [p.row_index for p in pairs] == [0, 2]
    assert stats.dropped["duplicate_pair"] == 1
    assert stats.dropped["identical_chosen_rejected"] == 1


def test_same_question_on_different_images_is_not_a_duplicate():
    red, blue = PILImage.new("RGB", (4, 4), "red"), PILImage.new("RGB", (4, 4), "blue")
    rows = [
        _row("r", ["4", "5"], [True, False], images=[red]),
        _row("b", ["4", "5"], [True, False], images=[blue]),
    ]
    pairs, _ = build_pairs(rows, PairRules())
    assert len(pairs) == 2


def test_pairs_per_prompt_pairs_kth_chosen_with_kth_rejected():
    row = _row(
        "m", ["c1", "c2", "w1", "w2", "w3"], [True, True, False, False, False], [0.8, 0.9, 0.5, 0.6, 0.1]
    )
    pairs, _ = build_pairs([row], PairRules(pairs_per_prompt=5))
    assert [(p.chosen, p.rejected) for p in pairs] == [("c2", "w2"), ("c1", "w1")]


def test_assistant_message_responses_are_read_as_text():
    row = _row("msg", [assistant_message("4"), assistant_message("5")], [True, False])
    pairs, _ = build_pairs([row], PairRules())
    assert (pairs[0].chosen, pairs[0].rejected) == ("4", "5")


def test_mismatched_verdict_list_raises_naming_the_row():
    with pytest.raises(
        PreferencePairError, match=r"row 0 \(source='hand', id='bad'\).*2 completions, 1 correct"
    ):
        build_pairs([_row("bad", ["4", "5"], [True])], PairRules())


def test_reward_criterion_without_thresholds_is_a_config_error():
    with pytest.raises(ValueError, match="min_chosen_score and max_rejected_score"):
        PairRules(criterion="reward", min_chosen_score=0.5)


def test_dataset_output_is_canonical_preference_rows_with_images_and_unique_ids():
    img = PILImage.new("RGB", (8, 8), "green")
    features = Features(
        {
            "prompt": List(
                {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
            ),
            "images": List(Image()),
            "solution": Value("string"),
            "source": Value("string"),
            "id": Value("string"),
            "completions": List(Value("string")),
            "correct": List(Value("bool")),
            "rm_scores": List(Value("float64")),
        }
    )
    rows = [
        _row("q1", ["4", "5", "4!", "6"], [True, False, True, False], [0.9, 0.2, 0.8, 0.1], images=[img]),
        _row("q2", ["5", "6"], [False, False], [0.1, 0.1], images=[img]),
    ]
    scored = Dataset.from_list(rows, features=features)
    out, stats = build_preference_dataset(scored, PairRules(pairs_per_prompt=2))
    assert set(PREFERENCE_COLUMNS) <= set(out.column_names)
    assert "completions" not in out.column_names
    assert out["id"][:] == ["q1/pair0", "q1/pair1"]
    assert out[0]["chosen"] == assistant_message("4") and out[0]["rejected"] == assistant_message("5")
    assert out[0]["images"][0].size == (8, 8)
    assert stats.as_metrics()["pairs/dropped/no_chosen_candidate"] == 1.0


def test_margin_criterion_pairs_the_best_response_with_one_at_least_the_threshold_below():
    # Skywork-VL-Reward-like raw scores; the rules checker's verdicts play no part.
    row = _row("m", ["best", "good", "fair", "poor", "broken"], scores=[20.0, 12.0, 8.0, 3.0, None])
    hardest, stats = build_pairs([row], PairRules(criterion="margin", min_margin=10, pairs_per_prompt=2))
    # best (20) against the highest-scored response 10 below it: fair (8); good (12) has nothing
    # left 10 below it (poor: 9 below), so the prompt ends there.
    assert [(p.chosen, p.rejected, p.chosen_score, p.rejected_score) for p in hardest] == [
        ("best", "fair", 20.0, 8.0)
    ]
    assert stats.dropped["margin_below_min"] == 1
    worst, _ = build_pairs([row], PairRules(criterion="margin", min_margin=10, rejected_pick="worst"))
    assert [(p.chosen, p.rejected) for p in worst] == [("best", "poor")]


def test_the_papers_margin_thresholds_keep_fewer_pairs_as_they_rise():
    margins = [4.0, 8.0, 9.0, 12.0, 14.0, 16.0, 25.0]  # best-minus-worst score gap per prompt
    rows = [_row(f"p{i}", ["high", "low"], scores=[m, 0.0], question=f"Q{i}?") for i, m in enumerate(margins)]
    kept = {
        threshold: build_pairs(rows, PairRules(criterion="margin", min_margin=threshold))[1].pairs
        for threshold in (7, 10, 15)
    }
    assert kept == {7: 6, 10: 4, 15: 2}


def test_margin_criterion_needs_two_scored_responses_and_refuses_absolute_thresholds():
    rows = [_row("one", ["a", "b"], scores=[5.0, None]), _row("none", ["a", "b"], scores=[None, None])]
    _, stats = build_pairs(rows, PairRules(criterion="margin"))
    assert stats.dropped["no_rejected_candidate"] == 1 and stats.dropped["no_chosen_candidate"] == 1
    with pytest.raises(ValueError, match="criterion 'margin' pairs responses by their score difference"):
        PairRules(criterion="margin", min_chosen_score=1.0)
