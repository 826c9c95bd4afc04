"""A benchmark is one spec file plus one registration line: no benchmark-name switches in eval.

A test benchmark registered by import path goes through the same code as the paper's: `eval
score` on the command line (entry-point plugin, worker pool), `score_records`, and the core's
`BenchmarkScorer` lookup that periodic eval during training uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.benchmarks import get_benchmark, load_items, score_records
from eval.runner import response_record
from skywork_rl.plugins import RegistryError
from skywork_rl.scorers import BENCHMARKS, UnknownBenchmarkError, get_benchmark_scorer, register_benchmark

HERE = Path(__file__).resolve().parent  # holds toy_benchmark.py, the benchmark under test
REPO_ROOT = HERE.parents[1]

RECORDS = [
    {"id": "a", "question": "1+1?", "answer": "2", "kind": "sum"},
    {"id": "b", "question": "2+2?", "answer": "4", "kind": "sum"},
    {"id": "c", "question": "3*3?", "answer": "9", "kind": "product"},
]
RESPONSES = {"a": "answer: 2", "b": "answer: 5", "c": "so the answer: 9"}


def _toy_files(tmp_path: Path) -> Path:
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return data


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = _toy_files(tmp_path)
    monkeypatch.delitem(sys.modules, "toy_benchmark", raising=False)
    register_benchmark("toy", "toy_benchmark:TOY")
    yield data
    BENCHMARKS.unregister("toy")


def test_a_registered_benchmark_is_loaded_and_scored_by_its_spec(toy: Path) -> None:
    assert "toy_benchmark" not in sys.modules  # registration imported nothing
    items = load_items("toy", toy)
    assert [item.id for item in items] == ["a", "b", "c"] and "toy_benchmark" in sys.modules
    records = [response_record(item, [RESPONSES[item.id]]) for item in items]
    result = score_records("toy", records, num_workers=0)
    assert (result.correct, result.total) == (2, 3)
    assert [item.parsed_pred for item in result.items] == ["2", "5", "9"]
    assert result.per_category == {"toy-aggregate": {"correct": 2, "total": 3}}  # the spec's aggregate
    assert result.per_subject["product"]["correct"] == 1


def test_periodic_eval_finds_a_registered_benchmark_through_the_core(toy: Path) -> None:
    scorer = get_benchmark_scorer("toy")  # what skywork_rl.callbacks.periodic_eval calls
    assert scorer is get_benchmark("toy")
    items = scorer.load_items(str(toy))
    metrics = scorer.score(items, [RESPONSES[item.id] for item in items])
    assert metrics == {"accuracy": pytest.approx(2 / 3), "correct": 2.0}


def test_an_unknown_benchmark_lists_the_registered_ones() -> None:
    with pytest.raises(
        UnknownBenchmarkError, match="unknown benchmark 'mmlu'; registered benchmarks: aime, .*mmmu"
    ):
        get_benchmark("mmlu")


def test_a_benchmark_registered_twice_is_refused() -> None:
    with pytest.raises(RegistryError, match="benchmark 'mmmu' is registered twice"):
        register_benchmark("mmmu", "someone_else.bench:MMMU")


def _eval_score(plugin_dir: Path, predictions: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`skywork-rl eval score --benchmark toy` in a fresh process with the toy plugin installed."""
    return subprocess.run(
        [sys.executable, "-m", "skywork_rl.cli", "eval", "score", "--benchmark", "toy"]
        + ["--predictions", str(predictions), "--output", str(out)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(HERE), str(REPO_ROOT)])},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # slow lane: the fast lane keeps this module covered by test_periodic_eval_finds_a_registered_benchmark_through_the_core
def test_eval_score_scores_a_plugin_benchmark_end_to_end(tmp_path: Path) -> None:
    _toy_files(tmp_path)
    info = tmp_path / "toy_bench-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-bench\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[skywork_rl.plugins]\ntoy = toy_benchmark:register\n")
    predictions = tmp_path / "toy.responses.jsonl"
    predictions.write_text(
        "".join(
            json.dumps({"id": r["id"], "response": RESPONSES[r["id"]], "meta": {"answer": r["answer"]}})
            + "\n"
            for r in RECORDS
        )
    )
    out = tmp_path / "scores.json"
    run = _eval_score(tmp_path, predictions, out)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert (report["correct"], report["total"]) == (2, 3)
    assert report["per_category"] == {"toy-aggregate": {"correct": 2, "total": 3}}
    # a benchmark without an official output layout takes only our responses.jsonl
    official = _eval_score(tmp_path, tmp_path, out)
    assert official.returncode != 0 and "for toy, pass the <benchmark>.responses.jsonl" in official.stderr
