"""Decontamination: drop training rows whose question overlaps an evaluation benchmark's questions.

A training set assembled from public sources can contain the very questions the model is later
scored on (MathVista, MMMU and GSM8K problems are reposted widely). A row is contaminated when it
shares a word n-gram (default 8 words) with any benchmark question, or, when it is shorter than
n words, when its normalised text equals a benchmark question (a short phrase inside a longer
question is too common to mean a copy). Texts are normalised
as for deduplication, so punctuation and case do not hide a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_prep.dedup import normalize_text
from skywork_rl.data.schema import prompt_text
from skywork_rl.errors import DataError

QUESTION_COLUMNS = ("question", "problem", "prompt", "query", "text")


@dataclass
class DecontaminateOptions:
    """Recipe group `decontaminate:`."""

    benchmarks: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Benchmark files/folders (.jsonl/.json/.parquet/.arrow or save_to_disk) to check against."
        },
    )
    benchmark_column: str | None = field(
        default=None,
        metadata={"help": f"Question column of the benchmarks (default: first of {QUESTION_COLUMNS})."},
    )
    benchmark_split: str = field(
        default="test", metadata={"help": "Split to read when a benchmark has several."}
    )
    ngram: int = field(default=8, metadata={"help": "Word n-gram length that counts as overlap."})


def _question_of(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if isinstance(value, list):  # a canonical `prompt` (chat messages)
        return prompt_text(value)
    return "" if value is None else str(value)


def load_benchmark_questions(path: str | Path, column: str | None = None, split: str = "test") -> list[str]:
    """The question texts of one benchmark file or dataset folder."""
    import datasets

    path = Path(path)
    if path.is_dir():
        ds = datasets.load_from_disk(str(path))
    elif path.is_file():
        suffix = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}
        if path.suffix not in suffix:
            raise DataError(f"decontaminate.benchmarks: unsupported file type {path} (use {sorted(suffix)})")
        ds = datasets.load_dataset(suffix[path.suffix], data_files=str(path), split="train")
    else:
        raise DataError(
            f"decontaminate.benchmarks: no such file or folder {path}; the `benchmark-data` stage writes "
            "benchmark questions (e.g. mmmu_validation.jsonl) from MMMU, MathVista ... (recipes/README.md)"
        )
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds and len(ds) != 1:
            raise DataError(f"decontaminate.benchmark_split: {path} has splits {list(ds)}, not {split!r}")
        ds = ds[split] if split in ds else next(iter(ds.values()))
    if column is None:
        column = next((c for c in QUESTION_COLUMNS if c in ds.column_names), None)
        if column is None:
            raise DataError(
                f"decontaminate.benchmarks: {path} has no question column among {QUESTION_COLUMNS} "
                f"(columns: {ds.column_names}); set decontaminate.benchmark_column"
            )
    elif column not in ds.column_names:
        raise DataError(
            f"decontaminate.benchmark_column: {column!r} not in {path} (columns: {ds.column_names})"
        )
    questions = [_question_of(row, column) for row in ds.select_columns([column])]
    if not any(q.strip() for q in questions):  # checking against nothing would pass every row unseen
        raise DataError(
            f"decontaminate.benchmarks: {path} has no question text in column {column!r} "
            f"({len(questions)} rows); set decontaminate.benchmark_column to the column holding the questions"
        )
    return questions


class BenchmarkIndex:
    """Word n-grams of benchmark questions, for constant-time overlap checks per training row."""

    def __init__(self, questions: Iterable[str], ngram: int = 8) -> None:
        if ngram < 1:
            raise ValueError(f"decontaminate.ngram must be >= 1, got {ngram}")
        self.ngram = ngram
        self.grams: set[tuple[str, ...]] = set()
        self.texts: set[str] = set()
        for question in questions:
            words = normalize_text(question).split()
            if not words:
                continue
            self.texts.add(" ".join(words))
            self.grams.update(_ngrams(words, ngram))

    def __len__(self) -> int:
        return len(self.texts)

    def is_contaminated(self, text: str) -> bool:
        """Whether `text` shares an n-gram with a benchmark question (or, if shorter, equals one)."""
        words = normalize_text(text).split()
        if not words:
            return False
        if len(words) >= self.ngram:
            return any(gram in self.grams for gram in _ngrams(words, self.ngram))
        return " ".join(words) in self.texts


def _ngrams(words: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def build_index(options: DecontaminateOptions) -> BenchmarkIndex:
    questions: list[str] = []
    for path in options.benchmarks:
        questions.extend(load_benchmark_questions(path, options.benchmark_column, options.benchmark_split))
    return BenchmarkIndex(questions, options.ngram)
