"""Benchmark registry: how the core's training callbacks evaluate a benchmark without importing `eval`.

Periodic eval during training must score exactly as `skywork-rl eval` does, but the core does not
know the eval package. A plugin (`skywork_rl.plugins`; eval's is ``eval.plugin``) registers each
benchmark by name and import path, ``register_benchmark("mmmu", "eval.benchmarks:MMMU")``: an
object with the `BenchmarkScorer` methods (eval's `BenchmarkSpec`), imported when first looked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from skywork_rl.plugins import Registry, RegistryError, UnknownEntryError, load_plugins


class UnknownBenchmarkError(UnknownEntryError):
    """No plugin registered the benchmark."""


BENCHMARKS = Registry("benchmark", before_lookup=load_plugins, unknown_error=UnknownBenchmarkError)


@runtime_checkable
class BenchmarkScorer(Protocol):
    """A benchmark as a training callback needs it: items to generate for, and their score.

    Items carry ``row``, the canonical row to generate from (`skywork_rl.data.schema`); whatever else
    they hold is the scorer's business.
    """

    def load_items(self, path: str | None, *, limit: int | None = None) -> list[Any]:
        """The benchmark's items from a local file in its official layout (None: its default source)."""
        ...

    def score(self, items: Sequence[Any], responses: Sequence[str]) -> dict[str, float]:
        """Metrics of one response per item, ``accuracy`` (a fraction) and ``correct`` at least."""
        ...


def register_benchmark(name: str, target: str) -> None:
    """Register benchmark `name` as ``module:attr``, an object with the `BenchmarkScorer` methods."""
    BENCHMARKS.register(name, target)


def benchmark_names() -> list[str]:
    """Every registered benchmark's name, sorted (imports none of them)."""
    return BENCHMARKS.names()


def get_benchmark_scorer(name: str) -> BenchmarkScorer:
    """Benchmark `name`, imported on first use; an unknown name is an error listing the known ones."""
    scorer = BENCHMARKS.get(name)
    if not isinstance(scorer, BenchmarkScorer):
        raise RegistryError(
            f"benchmark {name!r} ({BENCHMARKS.target(name)}) has no load_items/score methods; register "
            "an eval.benchmarks.BenchmarkSpec or another BenchmarkScorer"
        )
    return scorer
