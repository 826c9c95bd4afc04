"""What `eval` adds to the core: the `eval` and `select` commands, the `select` and `benchmark-data`
pipeline stages, and its benchmark scorers.

Declared in pyproject.toml as the ``skywork_rl.plugins`` entry point ``eval``. Training's periodic
eval (`skywork_rl.callbacks.periodic_eval`) finds a benchmark through `skywork_rl.scorers`, which
reaches `benchmark_scorers` here, so a number logged during training is scored by the same code as
the final `skywork-rl eval`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skywork_rl.plugins import register_command
from skywork_rl.scorers import register_benchmark_provider
from skywork_rl.stages.registry import register_stage


@dataclass(frozen=True)
class EvalBenchmarkScorer:
    """One benchmark of `eval.benchmarks` behind the core's `BenchmarkScorer` protocol."""

    name: str

    def load_items(self, path: str | None, *, limit: int | None = None) -> list[Any]:
        """`eval.benchmarks.EvalItem`s from `path` (its official layout), else the hub."""
        from eval.benchmarks import load_items  # defers sympy

        return load_items(self.name, path, limit=limit)

    def score(self, items: Sequence[Any], responses: Sequence[str]) -> dict[str, float]:
        """Accuracy and correct count of one response per item, as `skywork-rl eval` scores them."""
        from eval.benchmarks import score_records  # defers sympy
        from eval.runner import response_record  # defers sympy

        records = [response_record(item, [text]) for item, text in zip(items, responses, strict=True)]
        result = score_records(self.name, records)
        return {"accuracy": result.accuracy, "correct": float(result.correct)}


def benchmark_scorers() -> dict[str, EvalBenchmarkScorer]:
    """Every benchmark eval knows, by name (the provider `register` declares)."""
    from eval.benchmarks import BENCHMARKS  # defers sympy

    return {name: EvalBenchmarkScorer(name) for name in BENCHMARKS}


def register() -> None:
    """Register the commands, the `select` and `benchmark-data` stages and the benchmark provider
    (import paths only)."""
    register_command(
        "eval", "eval.cli:main", "evaluate a checkpoint on benchmarks, or `eval score` saved responses"
    )
    register_command(
        "select", "eval.select:main", "rank checkpoints by critical-token entropy (and accuracy)"
    )
    register_stage("select", "eval.select_stage:SelectStage")
    register_stage("benchmark-data", "eval.benchmark_data:BenchmarkDataStage")
    register_benchmark_provider("eval.plugin:benchmark_scorers")
