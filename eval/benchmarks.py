"""The benchmarks: how each one's records become canonical prompts, and how its responses are scored.

Prompts follow each benchmark's official template (MMMU's ``configs/llava1.5.yaml`` wording,
MathVista's ``query`` field, MathVerse's ``query_cot``) plus one instruction for reasoning models
(think, then ``\\boxed{}``), which the rule-based extractors read first.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.deadline import DEFAULT_TIMEOUT_S, score_with_deadline
from eval.loading import BenchmarkDataError, find_local, load_hub, load_image, read_records
from eval.math_scoring import Verdict, score_aime, score_mathverse, score_mathvista, score_olympiadbench
from eval.mmmu import (
    OFFICIAL_SUBJECT_ORDER,
    SUBJECT_TO_DOMAIN,
    group_by_subject,
    score_mmmu_outputs,
    subject_of,
)
from eval.scoring import BenchmarkResult, ItemResult, summarize
from skywork_rl.data.schema import user_prompt
from skywork_rl.errors import DataError

REASONING_INSTRUCTION = "Think step by step inside <think> </think>, then give the final answer in \\boxed{}."


@dataclass
class EvalItem:
    """A benchmark item: the canonical row to generate from and what its scorer needs (JSON-able)."""

    id: str
    row: dict[str, Any]
    meta: dict[str, Any]
    subject: str = ""
    category: str = ""


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: hub location, record -> item conversion, and scoring of saved responses."""

    name: str
    hub_id: str
    split: str
    to_item: Callable[[dict[str, Any], int, Path], EvalItem]
    score_item: Callable[[str, dict[str, Any]], Verdict] | None = None
    hub_configs: list[str] = field(default_factory=list)


def _images(record: dict[str, Any], keys: list[str], base: Path, where: str) -> list[Any]:
    images = [load_image(record.get(k), base, where) for k in keys]
    return [img for img in images if img is not None]


def _row(item_id: str, source: str, text: str, images: list[Any], solution: Any) -> dict[str, Any]:
    prompt = user_prompt(f"{text}\n\n{REASONING_INSTRUCTION}", num_images=len(images))
    return {"id": item_id, "source": source, "prompt": prompt, "images": images, "solution": str(solution)}


def _list_literal(value: Any) -> Any:
    """An MMMU open answer with several accepted forms, which the hub and its parquet store as a
    string like the options (``validation_Math_15``: ``"['24/7', '3.429']"``), as a list."""
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return value
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    return value


def _mmmu_item(record: dict[str, Any], index: int, base: Path) -> EvalItem:
    item_id = str(record["id"])
    options = record.get("options") or []
    if isinstance(options, str):
        options = ast.literal_eval(options)  # the hub stores "['a', 'b']"
    answer = _list_literal(record["answer"])
    question_type = record.get("question_type", "multiple-choice" if options else "open")
    letters = [chr(ord("A") + i) for i in range(len(options))]
    if question_type == "multiple-choice":
        listed = "\n".join(f"({letter}) {option}" for letter, option in zip(letters, options, strict=True))
        text = f"{record['question']}\n\n{listed}\n\nAnswer with the option's letter from the given choices directly."
    else:
        text = f"{record['question']}\n\nAnswer the question using a single word or phrase."
    images = _images(record, [f"image_{k}" for k in range(1, 8)], base, f"MMMU item {item_id}")
    subject = subject_of(item_id)
    meta = {
        "question_type": question_type,
        "answer": answer,
        "all_choices": letters,
        "index2ans": dict(zip(letters, options, strict=True)),
    }
    return EvalItem(
        item_id,
        _row(item_id, "mmmu", text, images, answer),
        meta,
        subject,
        SUBJECT_TO_DOMAIN.get(subject, ""),
    )


def _mathvista_item(record: dict[str, Any], index: int, base: Path) -> EvalItem:
    item_id = str(record.get("pid") or record.get("_key") or index)
    metadata = record.get("metadata") or {}
    image = record.get("decoded_image") or record.get("image")
    images = _images({"image": image}, ["image"], base, f"MathVista item {item_id}")
    meta = {k: record.get(k) for k in ("question_type", "answer_type", "precision", "choices", "answer")}
    meta["precision"] = int(meta["precision"]) if meta["precision"] is not None else None
    text = record.get("query") or record["question"]
    return EvalItem(
        item_id,
        _row(item_id, "mathvista", text, images, record["answer"]),
        meta,
        metadata.get("task", ""),
        metadata.get("category", ""),
    )


def _mathverse_item(record: dict[str, Any], index: int, base: Path) -> EvalItem:
    item_id = str(record.get("sample_index", index))
    images = _images(record, ["image"], base, f"MathVerse item {item_id}")
    text = record.get("query_cot") or record.get("query_wo") or record["question"]
    meta = {"question_type": record["question_type"], "answer": record["answer"]}
    subject = record.get("problem_version", "")
    category = (record.get("metadata") or {}).get("subject", "")
    return EvalItem(
        item_id, _row(item_id, "mathverse", text, images, record["answer"]), meta, subject, category
    )


def _olympiad_item(record: dict[str, Any], index: int, base: Path) -> EvalItem:
    item_id = str(record.get("id", index))
    images = _images(record, [f"image_{k}" for k in range(1, 6)], base, f"OlympiadBench item {item_id}")
    text = "\n".join(p for p in (record.get("context"), record["question"]) if p)
    final = record["final_answer"]
    meta = {
        "final_answer": final if isinstance(final, list) else [final],
        "is_multiple_answer": bool(record.get("is_multiple_answer")),
        "error": record.get("error"),
        "unit": record.get("unit"),
    }
    return EvalItem(
        item_id,
        _row(item_id, "olympiadbench", text, images, ", ".join(meta["final_answer"])),
        meta,
        str(record.get("subject", "")),
        str(record.get("subfield", "")),
    )


def _aime_item(record: dict[str, Any], index: int, base: Path) -> EvalItem:
    lower = {k.lower(): v for k, v in record.items()}
    item_id = str(lower.get("id") or lower.get("problem_idx") or index)
    text = lower.get("problem") or lower.get("question")
    if text is None or "answer" not in lower:
        raise BenchmarkDataError(f"AIME record {index}: needs 'problem' (or 'question') and 'answer'")
    return EvalItem(
        item_id,
        _row(item_id, "aime", text, [], lower["answer"]),
        {"answer": lower["answer"]},
        str(lower.get("year", "")),
    )


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "mmmu": BenchmarkSpec("mmmu", "MMMU/MMMU", "validation", _mmmu_item, None, list(OFFICIAL_SUBJECT_ORDER)),
    "mathvista": BenchmarkSpec(
        "mathvista", "AI4Math/MathVista", "testmini", _mathvista_item, score_mathvista
    ),
    "mathverse": BenchmarkSpec(
        "mathverse", "AI4Math/MathVerse", "testmini", _mathverse_item, score_mathverse, ["testmini"]
    ),
    "olympiadbench": BenchmarkSpec(
        "olympiadbench",
        "Hothan/OlympiadBench",
        "train",
        _olympiad_item,
        score_olympiadbench,
        ["OE_MM_maths_en_COMP"],
    ),
    "aime": BenchmarkSpec("aime", "AI-MO/aimo-validation-aime", "train", _aime_item, score_aime),
}


def get_benchmark(name: str) -> BenchmarkSpec:
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def load_items(
    name: str, path: str | Path | None = None, *, data_dir: str | Path | None = None, limit: int | None = None
) -> list[EvalItem]:
    """A benchmark's items from ``path``, else ``data_dir/<name>.*``, else the hub (online only)."""
    spec = get_benchmark(name)
    local = Path(path) if path is not None else find_local(name, data_dir)
    if local is not None:
        records, base = read_records(local, spec.split)
    else:
        records, base = load_hub(name, spec.hub_id, spec.split, spec.hub_configs or None), Path.cwd()
    if limit is not None:
        records = records[:limit]
    items = [spec.to_item(record, i, base) for i, record in enumerate(records)]
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise BenchmarkDataError(
                f"benchmark {name} ({local or spec.hub_id}): duplicate item id {item.id!r}"
            )
        seen.add(item.id)
    return items


def sample_responses(record: dict[str, Any]) -> list[str]:
    """A saved record's responses: ``responses`` (k samples) or ``response`` (one)."""
    if "responses" in record:
        responses = record["responses"]
        if not isinstance(responses, list) or not responses:
            raise DataError(f"record {record.get('id')!r}: 'responses' must be a non-empty list of texts")
        return [str(r) for r in responses]
    if "response" in record:
        return [str(record["response"])]
    raise DataError(f"record {record.get('id')!r}: no 'response' (or 'responses') field")


def score_records(
    name: str,
    records: list[dict[str, Any]],
    *,
    mmmu_reasoning: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    num_workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BenchmarkResult:
    """Score saved response records ``{id, response | responses, meta, subject, category}`` of one
    benchmark, every comparison under a ``timeout_s`` deadline (`eval.deadline`); a record with
    ``not_generated`` instead of responses counts as a failure of each of its ``num_samples``.

    With k ``responses`` per record, sample s (every record's s-th response) is scored as one run
    (MMMU: its own seeded official run) and the verdicts of all samples are summarised together
    (avg@k; see `eval.scoring`). Every record must carry the same number of samples."""
    spec = get_benchmark(name)
    for record in records:
        missing = [key for key in ("id", "meta") if key not in record]
        if missing:
            raise DataError(f"{name} record {record.get('id', '?')!r}: lacks {missing}")
    # an item the backend could not generate for is a failure with its reason (every sample of it),
    # never an empty answer scored wrong
    unseen = [item for record in records if "not_generated" in record for item in _not_generated(record)]
    records = [record for record in records if "not_generated" not in record]
    if unseen and progress is not None:
        progress(len(unseen))
    samples = [sample_responses(record) for record in records]
    k = len(samples[0]) if samples else 1
    uneven = [record["id"] for record, texts in zip(records, samples, strict=True) if len(texts) != k]
    if uneven:
        raise DataError(
            f"{name}: records carry different numbers of samples ({k} for {records[0]['id']!r}, "
            f"otherwise for {uneven[:3]}); regenerate them with one --num-samples"
        )
    if name == "mmmu":
        items: list[ItemResult] = []
        for s in range(k):
            outputs = [
                {"id": r["id"], "response": texts[s], **r["meta"]}
                for r, texts in zip(records, samples, strict=True)
            ]
            result = score_mmmu_outputs(
                group_by_subject(outputs),
                reasoning=mmmu_reasoning,
                timeout_s=timeout_s,
                num_workers=num_workers,
                sample=s,
                progress=progress,
            )
            items.extend(result.items)
        return summarize("mmmu", items + unseen)
    assert spec.score_item is not None
    jobs = [(texts[s], r["meta"]) for s in range(k) for r, texts in zip(records, samples, strict=True)]
    scored = score_with_deadline(name, jobs, timeout_s=timeout_s, num_workers=num_workers, progress=progress)
    items = []
    for position, result in enumerate(scored):
        record = records[position % len(records)]
        items.append(
            ItemResult(
                id=record["id"],
                parsed_pred=result.parsed_pred,
                gold=record["meta"].get("answer", record["meta"].get("final_answer")),
                correct=bool(result.correct) and result.error is None,
                subject=record.get("subject", ""),
                category=record.get("category", ""),
                error=result.error,
                sample=position // len(records),
            )
        )
    return summarize(name, items + unseen)


def _not_generated(record: dict[str, Any]) -> list[ItemResult]:
    """The failures of a record saved without responses (`eval.runner.response_record`)."""
    meta = record["meta"]
    return [
        ItemResult(
            id=record["id"],
            parsed_pred=None,
            gold=meta.get("answer", meta.get("final_answer")),
            correct=False,
            subject=record.get("subject", ""),
            category=record.get("category", ""),
            error=f"not generated: {record['not_generated']}",
            sample=s,
        )
        for s in range(int(record.get("num_samples", 1)))
    ]
