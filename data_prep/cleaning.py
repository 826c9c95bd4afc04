"""Cleaning: drop rows that cannot train or be verified, normalise gold answers, count every drop.

A row goes when an image is missing or does not decode, the prompt's image placeholders do not
match its images, the question is empty, or the gold answer is empty after normalisation (an
unverifiable row gives GRPO a zero reward whatever the policy does). Normalisation only strips
notation that carries no meaning (``$..$``, a trailing period, ``\\boxed{}``, thousands
separators), so the verifier compares the answer, not its typography.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from data_prep.images import decode_image, image_bytes_of
from skywork_rl.data.schema import prompt_text
from skywork_rl.rewards import parse_gold

DROP = "_drop_reason"
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_LETTER = re.compile(r"^\(([A-Za-z])\)$")  # "(b)": an option letter, never a variable


@dataclass
class CleanOptions:
    """Recipe group `clean:`."""

    normalize_answers: bool = field(
        default=True, metadata={"help": "Normalise gold answers (see module doc)."}
    )
    min_image_side: int = field(
        default=1, metadata={"help": "Drop rows with an image whose shorter side is below this (pixels)."}
    )
    require_images: bool = field(
        default=False, metadata={"help": "Drop text-only rows (for a purely visual RL set)."}
    )


def normalize_answer(text: str) -> str:
    """Canonical spelling of a gold answer: ``" $\\boxed{1,000}$. "`` -> ``"1000"``, ``"(b)"`` -> ``"B"``."""
    answer = parse_gold(str(text or "")).strip()
    while len(answer) >= 2 and answer[0] == answer[-1] == "$":
        answer = answer[1:-1].strip()
    answer = parse_gold(answer).strip()  # "$\boxed{x}$" unwraps only after the dollars go
    if len(answer) > 1 and answer.endswith(".") and not answer.endswith(".."):
        answer = answer[:-1].rstrip()
    if _THOUSANDS.match(answer):
        answer = answer.replace(",", "")
    letter = _LETTER.match(answer)
    if letter:
        answer = letter.group(1).upper()
    return re.sub(r"\s+", " ", answer)


def count_image_parts(prompt: list[dict[str, Any]]) -> int:
    total = 0
    for message in prompt:
        content = message.get("content")
        if isinstance(content, list):
            total += sum(1 for part in content if part.get("type") == "image")
    return total


def drop_reason(row: dict[str, Any], options: CleanOptions) -> str:
    """Why `row` must go ("" when it stays). Checks run cheapest first; the first failure names the row."""
    if row.get(DROP):
        return row[DROP]
    if not prompt_text(row["prompt"]).strip():
        return "empty_question"
    if not str(row.get("solution") or "").strip():
        return "empty_solution"
    images = row.get("images") or []
    if options.require_images and not images:
        return "no_image"
    if count_image_parts(row["prompt"]) != len(images):
        return "image_count_mismatch"
    for value in images:
        data = image_bytes_of(value) if value is not None else None
        if not data:
            return "missing_image"
        image = decode_image(data)
        if image is None:
            return "corrupt_image"
        if min(image.size) < options.min_image_side:
            return "image_too_small"
    return ""


def clean_row(row: dict[str, Any], options: CleanOptions) -> dict[str, Any]:
    """`row` with its answer normalised and ``_drop_reason`` set."""
    out = dict(row)
    if options.normalize_answers and row.get("solution") is not None:
        out["solution"] = normalize_answer(row["solution"])
    out[DROP] = drop_reason(out, options)
    return out


def clean_dataset(
    dataset: Any, options: CleanOptions, num_proc: int | None = None
) -> tuple[Any, Counter[str]]:
    """(kept rows, dropped counts per reason). Images are read undecoded and kept as they were."""
    from datasets import Image, List, Value

    if "images" in dataset.column_names:
        dataset = dataset.cast_column("images", List(Image(decode=False)))
    features = dataset.features.copy()
    features[DROP] = Value("string")
    marked = dataset.map(
        lambda row: clean_row(row, options), features=features, num_proc=num_proc, desc="clean"
    )
    dropped = Counter(r for r in marked[DROP] if r)
    kept = marked.filter(lambda r: not r, input_columns=[DROP], num_proc=num_proc).remove_columns(DROP)
    if "images" in kept.column_names:
        kept = kept.cast_column("images", List(Image()))
    return kept, dropped
