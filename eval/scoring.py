"""Per-item verdicts and their summary: the one report shape every benchmark writes.

``{"benchmark", "accuracy" (0-1), "correct", "total", "num_items", "num_samples",
"per_sample_accuracy", "accuracy_std", "failures", "per_subject": {name: {correct, total,
accuracy}}, "per_category": {...}, "per_item": [{id, sample, parsed_pred, correct, gold, subject,
category, error}]}``

With k samples per item (avg@k, as R1V3 reports), every (item, sample) pair is one verdict:
``correct``/``total`` count over all of them, so ``accuracy`` is the mean of the k per-sample
accuracies; ``per_sample_accuracy`` lists those and ``accuracy_std`` is their sample standard
deviation (0 for one sample). ``failures`` counts verdicts that could not be computed (a
comparison past its deadline, a scorer error): they are scored wrong and carry their ``error``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ItemResult:
    """One scored item. ``parsed_pred`` is what the scorer read from the response (JSON-able)."""

    id: str
    parsed_pred: Any
    gold: Any
    correct: bool
    subject: str = ""
    category: str = ""
    error: str | None = None  # why it could not be scored (then ``correct`` is False)
    sample: int = 0  # which of the item's k samples


@dataclass
class BenchmarkResult:
    """A benchmark's verdicts and their breakdowns."""

    benchmark: str
    correct: int
    total: int
    per_subject: dict[str, dict[str, float]] = field(default_factory=dict)
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    items: list[ItemResult] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def num_samples(self) -> int:
        return len({item.sample for item in self.items}) or 1

    @property
    def failures(self) -> int:
        return sum(item.error is not None for item in self.items)

    @property
    def per_sample_accuracy(self) -> list[float]:
        """Accuracy of each sample (sample s = every item's s-th response), in sample order."""
        by_sample: dict[int, list[bool]] = {}
        for item in self.items:
            by_sample.setdefault(item.sample, []).append(item.correct)
        return [sum(v) / len(v) for _, v in sorted(by_sample.items())]

    @property
    def accuracy_std(self) -> float:
        per_sample = self.per_sample_accuracy
        return statistics.stdev(per_sample) if len(per_sample) > 1 else 0.0

    def to_dict(self, *, with_items: bool = True) -> dict[str, Any]:
        """The report JSON (``per_item`` left out with ``with_items=False``, for the overall report)."""
        out: dict[str, Any] = {
            "benchmark": self.benchmark,
            "accuracy": self.accuracy,
            "correct": self.correct,
            "total": self.total,
            "num_items": self.total // self.num_samples if self.items else self.total,
            "num_samples": self.num_samples,
            "per_sample_accuracy": self.per_sample_accuracy,
            "accuracy_std": self.accuracy_std,
            "failures": self.failures,
            "per_subject": self.per_subject,
            "per_category": self.per_category,
        }
        if with_items:
            out["per_item"] = [asdict(item) for item in self.items]
        return out

    def summary_line(self) -> str:
        """One line for the console (see `summary_line`)."""
        return summary_line(self.to_dict(with_items=False))


def summary_line(report: dict[str, Any]) -> str:
    """``mmmu: 325/900 = 36.11%``; with k samples ``mmmu: avg@5 = 36.11% ± 0.52 (std over samples:
    ...) on 900 items``; plus how many verdicts could not be computed, when any."""
    failures = report.get("failures", 0)
    failed = f"; {failures} could not be scored (counted wrong, see per_item errors)" if failures else ""
    k = report.get("num_samples", 1)
    if k == 1:
        return (
            f"{report['benchmark']}: {report['correct']}/{report['total']} = "
            f"{100 * report['accuracy']:.2f}%{failed}"
        )
    per_sample = ", ".join(f"{100 * a:.2f}" for a in report["per_sample_accuracy"])
    return (
        f"{report['benchmark']}: avg@{k} = {100 * report['accuracy']:.2f}% ± "
        f"{100 * report['accuracy_std']:.2f} (std over samples: {per_sample}) "
        f"on {report['num_items']} items{failed}"
    )


def _breakdown(items: Iterable[ItemResult], key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list[bool]] = {}
    for item in items:
        name = getattr(item, key)
        if name:
            groups.setdefault(name, []).append(item.correct)
    return {
        name: {"correct": sum(v), "total": len(v), "accuracy": sum(v) / len(v)} for name, v in groups.items()
    }


def summarize(benchmark: str, items: list[ItemResult]) -> BenchmarkResult:
    """Totals plus per-subject and per-category accuracy (instance level, as MMMU's official script)."""
    return BenchmarkResult(
        benchmark=benchmark,
        correct=sum(item.correct for item in items),
        total=len(items),
        per_subject=_breakdown(items, "subject"),
        per_category=_breakdown(items, "category"),
        items=items,
    )
