"""Adapters: a public dataset (hub id, or a local parquet/jsonl/json/arrow file or folder) mapped
into the canonical schema through a `ColumnMapping`.

Images stay encoded (``datasets.Image`` of bytes): a missing file becomes a null image entry and a
corrupt one passes through untouched, so the cleaning step can count both per reason instead of
the load crashing on the first bad row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.images import MissingImageError, to_image_bytes
from data_prep.mappings import ColumnMapping
from skywork_rl.schema import user_prompt

DROP = "_drop_reason"


def canonical_features(with_choices: bool) -> Any:
    """`datasets.Features` of canonical rows as the adapters write them (images encoded, not decoded)."""
    from datasets import Features, Image, List, Value

    message = {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
    features = {
        "prompt": List(message),
        "images": List(Image()),
        "solution": Value("string"),
        "source": Value("string"),
        "id": Value("string"),
    }
    if with_choices:
        features["choices"] = List(Value("string"))
    return Features(features)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _from_conversations(turns: Any) -> tuple[str, str]:
    """(first human turn, first gpt turn) of LLaVA-style conversations."""
    question = answer = ""
    for turn in turns or []:
        speaker = str(turn.get("from", turn.get("role", ""))).lower()
        value = _text(turn.get("value", turn.get("content")))
        if speaker in ("human", "user") and not question:
            question = value
        elif speaker in ("gpt", "assistant") and question and not answer:
            answer = value
    return question, answer


def _gold(answer: str, mapping: ColumnMapping) -> str:
    if mapping.gold_from_solution and answer.strip():
        from skywork_rl.rewards import parse_gold

        answer = parse_gold(answer)
    if mapping.answer_regex:
        match = re.match(mapping.answer_regex, answer)
        if match:
            answer = match.group(1)
    return answer.strip()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def adapt_row(
    row: dict[str, Any],
    mapping: ColumnMapping,
    *,
    index: int,
    split: str = "train",
    image_root: str | Path | None = None,
    system_prompt: str | None = None,
) -> dict[str, Any]:
    """One source row as a canonical row (plus ``_drop_reason``, empty unless the row has no question).

    Images that reference nothing (no such file, null) become None entries: cleaning counts and
    drops those rows as ``missing_image``.
    """
    if mapping.conversations:
        question, answer = _from_conversations(row.get(mapping.conversations))
    else:
        question = _text(row.get(mapping.question)) if mapping.question else ""
        answer = _text(row.get(mapping.answer)) if mapping.answer else ""
    if mapping.image_token:
        question = question.replace(mapping.image_token, " ")
    question = re.sub(r"[ \t]+\n", "\n", question).strip()
    choices = [_text(c) for c in _as_list(row.get(mapping.choices))] if mapping.choices else []
    if choices and mapping.append_choices:
        options = "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(choices))
        question = f"{question}\nChoices:\n{options}"
    images: list[dict[str, Any] | None] = []
    for value in _as_list(row.get(mapping.images)) if mapping.images else []:
        try:
            images.append({"bytes": to_image_bytes(value, image_root), "path": None})
        except MissingImageError:
            images.append(None)
    raw_id = row.get(mapping.id) if mapping.id else None
    out: dict[str, Any] = {
        "prompt": user_prompt(question, len(images), system_prompt),
        "images": images,
        "solution": _gold(answer, mapping),
        "source": mapping.source,
        "id": _text(raw_id) if raw_id not in (None, "") else f"{mapping.source}-{split}-{index}",
        DROP: "" if question else "missing_question",
    }
    if mapping.choices:
        out["choices"] = choices
    return out


def _undecoded(dataset: Any, column: str | None) -> Any:
    """Cast an image column to ``decode=False`` so reading it never decodes (or crashes on) a bad image."""
    from datasets import Image, List, Sequence

    if not column or column not in dataset.column_names:
        return dataset
    feature = dataset.features[column]
    if isinstance(feature, Image):
        return dataset.cast_column(column, Image(decode=False))
    inner = getattr(feature, "feature", None)
    if isinstance(feature, (List, Sequence)) and isinstance(inner, Image):
        return dataset.cast_column(column, List(Image(decode=False)))
    return dataset


def check_columns(column_names: Sequence[str], mapping: ColumnMapping, where: str) -> None:
    """Fail early, naming the mapping field, when a mapped column is not in the source."""
    have = set(column_names)
    wanted = {
        name: getattr(mapping, name)
        for name in ("question", "answer", "images", "choices", "conversations")
        if getattr(mapping, name)
    }
    if mapping.conversations:
        wanted.pop("question", None)
        wanted.pop("answer", None)
    missing = {k: v for k, v in wanted.items() if v not in have}
    if missing:
        fields = ", ".join(f"columns.{k}={v!r}" for k, v in missing.items())
        raise KeyError(
            f"{where}: mapped column(s) not in the source ({fields}); the source has {sorted(have)}. "
            "Fix source.columns or pick the right source.mapping."
        )


def adapt_dataset(
    dataset: Any,
    mapping: ColumnMapping,
    *,
    split: str = "train",
    image_root: str | Path | None = None,
    system_prompt: str | None = None,
    where: str = "input",
    num_proc: int | None = None,
) -> Any:
    """Map a loaded source `datasets.Dataset` to canonical rows (with the ``_drop_reason`` column)."""
    check_columns(dataset.column_names, mapping, where)
    dataset = _undecoded(dataset, mapping.images)
    return dataset.map(
        lambda row, idx: adapt_row(
            row, mapping, index=idx, split=split, image_root=image_root, system_prompt=system_prompt
        ),
        with_indices=True,
        remove_columns=dataset.column_names,
        features=_with_drop(canonical_features(bool(mapping.choices))),
        num_proc=num_proc,
        desc=f"adapt {mapping.source}",
    )


def _with_drop(features: Any) -> Any:
    from datasets import Features, Value

    return Features({**features, DROP: Value("string")})
