"""Decontamination removes planted benchmark questions and keeps the rest."""

from __future__ import annotations

import json

import pytest

from data_prep.decontaminate import BenchmarkIndex, load_benchmark_questions
from skywork_rl.errors import DataError


def test_planted_gsm8k_test_questions_are_found_even_reformatted(shared_data):
    benchmark = load_benchmark_questions(shared_data / "gsm8k" / "test.jsonl")
    assert len(benchmark) == 1319
    index = BenchmarkIndex(benchmark, ngram=8)
    planted = [
        benchmark[0],
        benchmark[100].upper(),  # case does not hide a copy
        "Solve this: " + benchmark[500].replace(",", " ,") + " Show your work.",  # wrapped and re-punctuated
    ]
    clean = [
        "A rectangle is 3 cm wide and 5 cm long. What is its area in square centimetres?",
        "How many red circles are in the image?",
        "Tom has 4 apples and buys 7 more; then he gives away half of them to his sister. How many remain?",
    ]
    assert [index.is_contaminated(t) for t in planted] == [True, True, True]
    assert [index.is_contaminated(t) for t in clean] == [False, False, False]


def test_short_rows_match_only_a_whole_benchmark_question(tmp_path):
    path = tmp_path / "bench.jsonl"
    rows = [{"problem": "What is 2+3?"}, {"problem": "Find the value of x in the triangle below."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = BenchmarkIndex(load_benchmark_questions(path), ngram=8)
    assert index.is_contaminated("what is 2 + 3 ?") is False  # different tokens after normalisation
    assert index.is_contaminated("What is 2+3") is True
    assert index.is_contaminated("Find the value") is False  # a phrase inside a longer question is not a copy


def test_benchmark_without_a_question_column_names_the_fix(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps({"stem": "q"}) + "\n")
    with pytest.raises(DataError, match="decontaminate.benchmark_column"):
        load_benchmark_questions(path)


def test_a_benchmark_column_without_question_text_is_refused_not_checked_against_nothing(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps({"question": "", "stem": f"q{i}"}) + "\n" for i in range(3)))
    with pytest.raises(DataError, match=r"no question text in column 'question' \(3 rows\)"):
        load_benchmark_questions(path)


def test_a_missing_benchmark_file_names_the_stage_that_writes_one(tmp_path):
    with pytest.raises(DataError, match=r"no such file or folder .*the `benchmark-data` stage writes"):
        load_benchmark_questions(tmp_path / "mmmu_validation.jsonl")
