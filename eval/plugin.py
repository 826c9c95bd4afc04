"""What `eval` adds to the core: the `eval` and `select` commands, the `select` and `benchmark-data`
pipeline stages, and its benchmarks.

Declared in pyproject.toml as the ``skywork_rl.plugins`` entry point ``eval``. Each benchmark is
an `eval.benchmarks.BenchmarkSpec` registered by import path: `skywork-rl eval` and training's
periodic eval (`skywork_rl.callbacks.periodic_eval`) both look it up in `skywork_rl.scorers`, so a
number logged during training is scored by the same code as the final `skywork-rl eval`.
"""

from __future__ import annotations

from skywork_rl.plugins import register_command
from skywork_rl.scorers import register_benchmark
from skywork_rl.stages.registry import register_stage


def register() -> None:
    """Register the commands, the stages and the benchmarks (import paths only)."""
    register_command(
        "eval", "eval.cli:main", "evaluate a checkpoint on benchmarks, or `eval score` saved responses"
    )
    register_command(
        "select", "eval.select:main", "rank checkpoints by critical-token entropy (and accuracy)"
    )
    register_stage("select", "eval.select_stage:SelectStage")
    register_stage("benchmark-data", "eval.benchmark_data:BenchmarkDataStage")
    register_benchmark("mmmu", "eval.benchmarks:MMMU")
    register_benchmark("mathvista", "eval.benchmarks:MATHVISTA")
    register_benchmark("mathverse", "eval.benchmarks:MATHVERSE")
    register_benchmark("olympiadbench", "eval.benchmarks:OLYMPIADBENCH")
    register_benchmark("aime", "eval.benchmarks:AIME")
