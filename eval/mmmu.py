"""MMMU scoring: the official parser over saved responses, in the official order, plus a reasoning mode.

Inputs accepted as they come (`load_mmmu_outputs`):
- the official output folder: ``<dir>/<Subject>/output.json``, each a list of
  ``{id, question_type, answer, all_choices, index2ans, response}`` (``main_parse_and_eval.py``);
- one JSON file holding such a list (our runner writes this shape too);
- the ``main_eval_only.py`` shape: a JSON object ``{id: parsed_pred}`` scored against an answer
  file (``answer_dict_val.json``: ``{id: {question_type, ground_truth}}``); no parsing, no randomness.

Order matters: the multiple-choice fallback draws from one generator seeded 42 per run, so items are
scored subject by subject in the official ``CAT_SHORT2LONG`` order, each subject in file order.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from eval.deadline import DEFAULT_TIMEOUT_S, score_with_deadline
from eval.mmmu_official import (
    CAT_SHORT2LONG,
    DOMAIN_CAT2SUB_CAT,
    eval_multi_choice,
    eval_open,
    parse_open_response,
)
from eval.mmmu_parse import MULTIPLE_CHOICE, parse_response
from eval.scoring import BenchmarkResult, ItemResult, summarize
from skywork_rl.errors import DataError

OFFICIAL_SUBJECT_ORDER: tuple[str, ...] = tuple(CAT_SHORT2LONG.values())
OFFICIAL_SEED = 42
SUBJECT_TO_DOMAIN = {s: d for d, subjects in DOMAIN_CAT2SUB_CAT.items() for s in subjects}


def subject_of(item_id: str) -> str:
    """``validation_Art_Theory_12`` -> ``Art_Theory`` (the official ``"_".join(id.split("_")[1:-1])``)."""
    return "_".join(item_id.split("_")[1:-1])


def load_mmmu_outputs(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Model outputs grouped by subject, in file order (see the module docstring for the layouts)."""
    path = Path(path)
    if path.is_dir():
        by_subject: dict[str, list[dict[str, Any]]] = {}
        for output in sorted(path.glob("*/output.json")):
            by_subject[output.parent.name] = _read_json_list(output)
        if not by_subject:
            raise FileNotFoundError(
                f"MMMU predictions {path}: no <Subject>/output.json inside; expected the official "
                "example_outputs layout or a single JSON file"
            )
        return by_subject
    if not path.is_file():
        raise FileNotFoundError(f"MMMU predictions {path}: no such file or folder")
    return group_by_subject(_read_json_list(path))


def group_by_subject(items: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Group output entries by the subject in their id, keeping their order."""
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_subject.setdefault(item.get("subject") or subject_of(item["id"]), []).append(item)
    return by_subject


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "per_item" in data:
        raise ValueError(f"{path}: this is a score report, not model outputs")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of outputs with 'id' and 'response'")
    for i, item in enumerate(data):
        missing = [k for k in ("id", "question_type", "answer", "response") if k not in item]
        if item.get("question_type") == MULTIPLE_CHOICE:
            missing += [k for k in ("all_choices", "index2ans") if k not in item]
        if missing:
            raise ValueError(f"{path}: item {i} ({item.get('id', '?')}) lacks {missing}")
    return data


def _ordered_subjects(subjects: Iterable[str]) -> list[str]:
    """The official subject order (which fixes the random guesses' sequence), then unknown subjects.

    Differs from upstream on purpose: the official ``main_eval_only.py`` skips subjects missing from
    ``CAT_SHORT2LONG``, whereas these are scored here (after the known ones, in name order, under the
    category "Other", and they count in the overall accuracy); on the real MMMU validation set every subject is
    known and the two agree."""
    present = set(subjects)
    known = [s for s in OFFICIAL_SUBJECT_ORDER if s in present]
    return known + sorted(present - set(known))


def judge(question_type: str, gold: Any, parsed_pred: Any) -> bool:
    """The official verdict (`eval_multi_choice` / `eval_open`)."""
    if question_type == MULTIPLE_CHOICE:
        return eval_multi_choice(gold, parsed_pred)
    return eval_open(gold, parsed_pred)


def score_mmmu_outputs(
    outputs: dict[str, list[dict[str, Any]]],
    *,
    reasoning: bool = False,
    seed: int = OFFICIAL_SEED,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    num_workers: int | None = None,
    sample: int = 0,
    progress: Callable[[int], None] | None = None,
) -> BenchmarkResult:
    """Score outputs grouped by subject, exactly as ``main_parse_and_eval.py`` (``reasoning=False``).

    Each response is parsed under a deadline in a worker (`eval.deadline`); the seeded guesses for
    unparseable multiple-choice responses are then drawn here, in the official subject order, from
    one ``random.Random(seed)`` per call (one call = one official run). A response whose parse
    failed (deadline, error) is wrong and draws no guess."""
    ordered = [(subject, item) for subject in _ordered_subjects(outputs) for item in outputs[subject]]
    scored = score_with_deadline(
        "mmmu",
        functools.partial(parse_response, reasoning=reasoning),
        [(str(item["response"]), item) for _, item in ordered],
        timeout_s=timeout_s,
        num_workers=num_workers,
        progress=progress,
    )
    rng = random.Random(seed)
    items: list[ItemResult] = []
    for (subject, item), result in zip(ordered, scored, strict=True):
        parsed = result.parsed_pred
        if result.error is None and parsed is None and item["question_type"] == MULTIPLE_CHOICE:
            parsed = rng.choice(item["all_choices"])  # upstream's fallback, same draw order
        items.append(
            ItemResult(
                id=item["id"],
                parsed_pred=_jsonable(parsed),
                gold=item["answer"],
                correct=result.error is None and judge(item["question_type"], item["answer"], parsed),
                subject=subject,
                category=SUBJECT_TO_DOMAIN.get(subject, "Other"),
                error=result.error,
                sample=sample,
            )
        )
    return summarize("mmmu", items)


OFFICIAL_LAYOUT = "<Subject>/output.json files or a JSON list of outputs"


def _read_json(path: Path, flag: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{flag} {path}: not a readable JSON file ({exc})") from None


def score_official_predictions(
    predictions: Path, *, answers: str | None, reasoning: bool, timeout_s: float
) -> BenchmarkResult:
    """`skywork-rl eval score` on MMMU's own layouts: the official output folder or one JSON list
    (parsed and scored here), or ``{id: parsed_pred}`` against ``--answers``; a DataError names the file."""
    where = f"--predictions {predictions}"
    raw = _read_json(predictions, "--predictions") if predictions.is_file() else None
    if isinstance(raw, dict):
        if not answers:
            raise DataError(f"{where}: holds {{id: parsed_pred}}; pass --answers answer_dict_val.json")
        try:
            return score_mmmu_parsed(raw, _read_json(Path(answers), "--answers"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{where} with --answers {answers}: ids or fields do not match ({exc})") from None
    try:
        outputs = load_mmmu_outputs(predictions)
    except FileNotFoundError as exc:
        raise DataError(f"{where}: no responses found ({exc})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # the message names the file inside
        raise DataError(f"{where}: cannot read MMMU outputs ({exc})") from None
    return score_mmmu_outputs(outputs, reasoning=reasoning, timeout_s=timeout_s)


def score_mmmu_parsed(parsed: dict[str, Any], answers: dict[str, dict[str, Any]]) -> BenchmarkResult:
    """``main_eval_only.py``: ``{id: parsed_pred}`` against ``{id: {question_type, ground_truth}}``."""
    missing = [i for i in parsed if i not in answers]
    if missing:
        raise KeyError(f"MMMU answers: no gold for {len(missing)} ids, e.g. {missing[:3]}")
    by_subject = group_by_subject({"id": i, "pred": p} for i, p in parsed.items())
    items: list[ItemResult] = []
    for subject in _ordered_subjects(by_subject):
        for entry in by_subject[subject]:
            gold = answers[entry["id"]]
            pred = entry["pred"]
            if gold["question_type"] != MULTIPLE_CHOICE:
                pred = parse_open_response(pred)  # "mainly for type consistency" (upstream comment)
            items.append(
                ItemResult(
                    id=entry["id"],
                    parsed_pred=_jsonable(pred),
                    gold=gold["ground_truth"],
                    correct=judge(gold["question_type"], gold["ground_truth"], pred),
                    subject=subject,
                    category=SUBJECT_TO_DOMAIN.get(subject, "Other"),
                )
            )
    return summarize("mmmu", items)


def _jsonable(parsed: Any) -> Any:
    # parse_open_response returns list(set(...)): sort for a stable report (the verdict ignores order)
    if isinstance(parsed, list):
        return sorted(parsed, key=lambda p: (isinstance(p, str), str(p)))
    return parsed
