"""Benchmark scorers: how the core's training callbacks evaluate a benchmark without importing `eval`.

Periodic eval during training must score exactly as `skywork-rl eval` does, but the core does not
know the eval package. A plugin (`skywork_rl.plugins`; eval's is ``eval.plugin``) registers a
*provider*: a ``module:function`` returning ``{benchmark name: BenchmarkScorer}``. Providers are
imported only when a benchmark is looked up, so registering them costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from skywork_rl.errors import SkyworkError
from skywork_rl.plugins import load_plugins

_PROVIDERS: list[str] = []


class UnknownBenchmarkError(SkyworkError, LookupError):
    """No registered provider knows the benchmark."""


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


def register_benchmark_provider(target: str) -> None:
    """Register ``module:function``, a function returning ``{name: BenchmarkScorer}``."""
    if target not in _PROVIDERS:
        _PROVIDERS.append(target)


def benchmark_scorers() -> dict[str, BenchmarkScorer]:
    """Every registered benchmark by name (imports the providers)."""
    load_plugins()
    scorers: dict[str, BenchmarkScorer] = {}
    for target in _PROVIDERS:
        module_name, _, function = target.partition(":")
        provider: Callable[[], Mapping[str, BenchmarkScorer]] = getattr(
            importlib.import_module(module_name), function
        )
        for name, scorer in provider().items():
            if name in scorers:
                raise SkyworkError(f"benchmark {name!r} is provided twice (the second by {target})")
            scorers[name] = scorer
    return scorers


def get_benchmark_scorer(name: str) -> BenchmarkScorer:
    """The scorer of benchmark `name`, or an error listing the known ones."""
    scorers = benchmark_scorers()
    if name not in scorers:
        known = ", ".join(sorted(scorers)) or "none (is the eval package installed with skywork-rl?)"
        raise UnknownBenchmarkError(f"unknown benchmark {name!r}; registered benchmarks: {known}")
    return scorers[name]
