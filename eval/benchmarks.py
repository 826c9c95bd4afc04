"""The benchmarks: how each one's records become canonical prompts, and how its responses are scored.

Prompts follow each benchmark's official template (MMMU's ``configs/llava1.5.yaml`` wording,
MathVista's ``query`` field, MathVerse's ``query_cot``) plus one instruction for reasoning models
(think, then ``\\boxed{}``), which the rule-based extractors read first.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.deadline import DEFAULT_TIMEOUT_S, score_with_deadline
from eval.loading import BenchmarkDataError, find_local, load_hub, load_image, read_records
from eval.math_scoring import Verdict, score_aime, score_mathverse, score_mathvista, score_olympiadbench
from eval.mmmu import (
    OFFICIAL_LAYOUT,
    OFFICIAL_SUBJECT_ORDER,
    SUBJECT_TO_DOMAIN,
    group_by_subject,
    score_mmmu_outputs,
    score_official_predictions,
    subject_of,
)
from eval.scoring import BenchmarkResult, ItemResult, summarize
from skywork_rl.data.schema import user_prompt
from skywork_rl.errors import DataError, SkyworkError
from skywork_rl.scorers import BENCHMARKS, get_benchmark_scorer

REASONING_INSTRUCTION = "Think step by step inside <think> </think>, then give the final answer in \\boxed{}."


@dataclass
class EvalItem:
    """A benchmark item: the canonical row to generate from and what its scorer needs (JSON-able)."""

    id: str
    row: dict[str, Any]
    meta: dict[str, Any]
    subject: str = ""
    category: str = ""


@dataclass
class ScoreOptions:
    """How saved responses are scored: MMMU's parser mode, the per-item deadline, the workers."""

    mmmu_reasoning: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    num_workers: int | None = None
    progress: Callable[[int], None] | None = None


# (spec, records, each record's k responses, options) -> one ItemResult per record and sample
ResponseScorer = Callable[
    ["BenchmarkSpec", list[dict[str, Any]], list[list[str]], ScoreOptions], list[ItemResult]
]


def score_each_response(
    spec: BenchmarkSpec, records: list[dict[str, Any]], samples: list[list[str]], options: ScoreOptions
) -> list[ItemResult]:
    """The default: every response by the spec's ``score_item`` in the deadline pool (all k samples
    in one batch); sample s of every record is run s of avg@k."""
    if spec.score_item is None:
        raise SkyworkError(
            f"benchmark {spec.name!r}: its BenchmarkSpec gives neither score_item nor score_responses"
        )
    k = len(samples[0]) if samples else 1
    jobs = [(texts[s], r["meta"]) for s in range(k) for r, texts in zip(records, samples, strict=True)]
    scored = score_with_deadline(
        spec.name,
        spec.score_item,
        jobs,
        timeout_s=options.timeout_s,
        num_workers=options.num_workers,
        progress=options.progress,
    )
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
    return items


def score_mmmu_runs(
    spec: BenchmarkSpec, records: list[dict[str, Any]], samples: list[list[str]], options: ScoreOptions
) -> list[ItemResult]:
    """MMMU: each sample s is its own seeded official run (`eval.mmmu.score_mmmu_outputs`)."""
    k = len(samples[0]) if samples else 1
    items: list[ItemResult] = []
    for s in range(k):
        outputs = [
            {"id": r["id"], "response": texts[s], **r["meta"]}
            for r, texts in zip(records, samples, strict=True)
        ]
        result = score_mmmu_outputs(
            group_by_subject(outputs),
            reasoning=options.mmmu_reasoning,
            timeout_s=options.timeout_s,
            num_workers=options.num_workers,
            sample=s,
            progress=options.progress,
        )
        items.extend(result.items)
    return items


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark, all of it: where its records are (hub id, split, configs), how a record
    becomes an item (``to_item``), how saved responses are scored (``score_item`` per response in
    the deadline pool, or a whole ``score_responses``) and summarised (``aggregate``).

    Registered by import path (`skywork_rl.scorers.register_benchmark`), it is also the core's
    `BenchmarkScorer` (``load_items``, ``score``), so periodic eval during training scores as
    `skywork-rl eval` does."""

    name: str
    hub_id: str
    split: str
    to_item: Callable[[dict[str, Any], int, Path], EvalItem]
    score_item: Callable[[str, dict[str, Any]], Verdict] | None = None
    hub_configs: list[str] = field(default_factory=list)
    score_responses: ResponseScorer = score_each_response
    aggregate: Callable[[str, list[ItemResult]], BenchmarkResult] = summarize
    # the id field of the benchmark's raw records (the `benchmark-data` stage reads it)
    id_field: str = "id"
    # its parser has an official and a reasoning mode (--mmmu-parser), recorded with its responses
    reasoning_parser: bool = False
    # `eval score` on the benchmark's own output files (not our responses.jsonl), and their layout
    score_official: Callable[..., BenchmarkResult] | None = None
    official_layout: str = ""

    def load_items(self, path: str | None, *, limit: int | None = None) -> list[EvalItem]:
        """The items from `path` (the official layout), else the hub."""
        return load_items(self.name, path, limit=limit)

    def score(self, items: Sequence[EvalItem], responses: Sequence[str]) -> dict[str, float]:
        """Accuracy and correct count of one response per item, as `skywork-rl eval` scores them."""
        records = [response_record(item, [text]) for item, text in zip(items, responses, strict=True)]
        result = score_records(self.name, records)
        return {"accuracy": result.accuracy, "correct": float(result.correct)}


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


# registered by eval's plugin (`eval.plugin.register`), one line each
MMMU = BenchmarkSpec(
    "mmmu",
    "MMMU/MMMU",
    "validation",
    _mmmu_item,
    hub_configs=list(OFFICIAL_SUBJECT_ORDER),
    score_responses=score_mmmu_runs,
    reasoning_parser=True,
    score_official=score_official_predictions,
    official_layout=OFFICIAL_LAYOUT,
)
MATHVISTA = BenchmarkSpec(
    "mathvista", "AI4Math/MathVista", "testmini", _mathvista_item, score_mathvista, id_field="pid"
)
MATHVERSE = BenchmarkSpec(
    "mathverse",
    "AI4Math/MathVerse",
    "testmini",
    _mathverse_item,
    score_mathverse,
    ["testmini"],
    id_field="sample_index",
)
OLYMPIADBENCH = BenchmarkSpec(
    "olympiadbench",
    "Hothan/OlympiadBench",
    "train",
    _olympiad_item,
    score_olympiadbench,
    ["OE_MM_maths_en_COMP"],
)
AIME = BenchmarkSpec("aime", "AI-MO/aimo-validation-aime", "train", _aime_item, score_aime)


def get_benchmark(name: str) -> BenchmarkSpec:
    """The registered spec of benchmark `name` (an `UnknownBenchmarkError` lists the registered ones)."""
    spec = get_benchmark_scorer(name)
    if not isinstance(spec, BenchmarkSpec) or spec.name != name:
        raise SkyworkError(
            f"benchmark {name!r} is registered as {BENCHMARKS.target(name)}, which is not an "
            f"eval.benchmarks.BenchmarkSpec named {name!r}; `skywork-rl eval` needs one"
        )
    return spec


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


def response_record(
    item: EvalItem, responses: Sequence[str], not_generated: str | None = None, num_samples: int = 1
) -> dict[str, Any]:
    """The saved form of one item's responses: what `score_records` reads back (id, the response —
    or with k > 1 samples the list ``responses`` —, subject, category and the item's scoring meta).

    An item the backend could not generate for (e.g. longer than vLLM's ``max_model_len``) is saved
    with the reason in ``not_generated`` and its ``num_samples`` instead of responses: scoring counts
    it as a failure with that reason, and a resumed run does not retry it (``--overwrite`` does)."""
    record: dict[str, Any] = {"id": item.id}
    if not_generated is not None:
        record.update(not_generated=not_generated, num_samples=num_samples)
    elif len(responses) == 1:
        record["response"] = responses[0]
    else:
        record["responses"] = list(responses)
    return {**record, "subject": item.subject, "category": item.category, "meta": item.meta}


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
    options = ScoreOptions(mmmu_reasoning, timeout_s, num_workers, progress)
    items = spec.score_responses(spec, records, samples, options) if records else []
    return spec.aggregate(name, items + unseen)


def _not_generated(record: dict[str, Any]) -> list[ItemResult]:
    """The failures of a record saved without responses (`response_record`)."""
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
