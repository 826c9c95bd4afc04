"""OlympiadBench: the official judge's rules, on its own labelled examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.math_scoring import score_olympiadbench
from eval.olympiad_judge import OlympiadJudge, parse_precision

EXAMPLES = Path(__file__).parent / "data" / "olympiadbench_scoring_examples.json"


def _cases() -> list[tuple[str, str, object, bool]]:
    cases = []
    for example in json.loads(EXAMPLES.read_text()):
        for answer in example["Ans"]:
            precision = answer.get("precision", 1e-8)
            precision = float(precision) if isinstance(precision, str) else precision
            cases.append((example["GT"], answer["answer"], precision, answer["equal"]))
    return cases


@pytest.mark.slow  # slow lane: the fast lane keeps this module covered by test_units_tolerance_and_plus_minus_in_scored_responses
def test_judge_agrees_with_all_36_labelled_examples_of_the_official_judge() -> None:
    """``eval/scoring_examples.json`` of OpenBMB/OlympiadBench: units, tolerance, \\pm, several answers,
    intervals, equations and the power tower. Upstream's own judge (sympy's parse_latex on ANTLR
    4.11) also agrees on all 36; so does this port."""
    cases = _cases()
    assert len(cases) == 36
    judge = OlympiadJudge()
    wrong = [
        (gold, answer)
        for gold, answer, precision, equal in cases
        if judge.judge(gold, answer, precision) != equal
    ]
    assert wrong == []


def test_units_tolerance_and_plus_minus_in_scored_responses() -> None:
    force = {"final_answer": ["0.64N"], "error": None}
    assert score_olympiadbench("<think>...</think>\\boxed{0.6400 N}", force).correct
    assert not score_olympiadbench("<think>...</think>\\boxed{0.64}", force).correct  # the unit is missing
    power = {"final_answer": ["\\cos ^{10}(\\frac{\\pi}{10})"], "error": "1e-4"}
    assert score_olympiadbench("So the final answer is $0.6054$", power).correct
    big = {"final_answer": ["7 \\times 10^{35}"], "error": "1e34"}
    assert score_olympiadbench("\\boxed{7.1 \\cdot 10^{35}}", big).correct
    assert not score_olympiadbench("\\boxed{7.1 \\cdot 10^{35}}", dict(big, error="1e33")).correct
    roots = {"final_answer": ["\\sqrt[3]{\\frac{5}{12}}, -\\sqrt[3]{\\frac{5}{12}}"], "error": None}
    assert score_olympiadbench("\\boxed{y = \\pm \\sqrt[3]{\\frac{5}{12}}}", roots).correct
    pairs = {"final_answer": ["(2,1),(3,1)"], "error": None}
    assert score_olympiadbench("\\boxed{(3,1)}, \\boxed{(2,1)}", pairs).correct  # every box is read
    assert parse_precision("1e34,0.001") == [1e34, 0.001] and parse_precision("") == 1e-8
