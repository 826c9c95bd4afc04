"""A whole benchmark in one file, as `docs/EXTENDING.md` describes (`test_benchmark_registry.py`
registers it): records -> items, a scorer (the text after "answer:") and its own aggregate.

A module here, not in a temporary folder: the scoring pool's workers take the test process's
``sys.path`` when they start, and this folder is on it from collection on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.benchmarks import BenchmarkSpec, EvalItem
from eval.math_scoring import Verdict
from eval.scoring import BenchmarkResult, ItemResult, summarize
from skywork_rl.data.schema import user_prompt
from skywork_rl.scorers import register_benchmark


def toy_item(record: dict[str, Any], index: int, base: Path) -> EvalItem:
    row = {
        "id": record["id"],
        "source": "toy",
        "prompt": user_prompt(record["question"], num_images=0),
        "images": [],
        "solution": record["answer"],
    }
    return EvalItem(record["id"], row, {"answer": record["answer"]}, subject=record["kind"])


def score_toy(response: str, meta: dict[str, Any]) -> Verdict:
    parsed = response.rpartition("answer:")[2].strip() or None
    return Verdict(parsed, parsed == meta["answer"])


def toy_summary(name: str, items: list[ItemResult]) -> BenchmarkResult:
    result = summarize(name, items)
    result.per_category = {"toy-aggregate": {"correct": result.correct, "total": result.total}}
    return result


TOY = BenchmarkSpec("toy", "nobody/toy", "test", toy_item, score_toy, aggregate=toy_summary)


def register() -> None:
    """The plugin entry point `test_eval_score_scores_a_plugin_benchmark_end_to_end` installs."""
    register_benchmark("toy", "toy_benchmark:TOY")
