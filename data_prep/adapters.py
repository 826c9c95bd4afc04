"""Adapters: a public dataset (hub id, or a local parquet/jsonl/json/arrow file or folder) mapped
into the canonical schema through a `ColumnMapping`.

Images stay encoded (``datasets.Image`` of bytes), never decoded here: a row whose image cannot be
read (no such file, null, a file the OS refuses) is marked ``missing_image`` / ``unreadable_image``
with what went wrong, for the stage to count and drop; a corrupt one passes through untouched, for
the cleaning step to count as ``corrupt_image``. Neither crashes the load on the first bad row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.cleaning import DROP
from data_prep.images import MissingImageError, UnreadableImageError, to_image_bytes
from data_prep.mappings import ColumnMapping, with_image_column
from skywork_rl.data.schema import user_prompt
from skywork_rl.errors import DataError
from skywork_rl.rewards import parse_gold

DROP_DETAIL = "_drop_detail"  # what made the row go, e.g. the image file that is not there


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
    """One source row as a canonical row plus ``_drop_reason`` (``missing_question``, ``missing_image``,
    ``unreadable_image`` or empty) and ``_drop_detail`` (what was wrong, naming the row).

    An image that cannot be read becomes a None entry in a row marked for dropping. A value that is
    no kind of image is a `DataError` naming the row and the column.
    """
    if mapping.conversations:
        question, answer = _from_conversations(row.get(mapping.conversations))
    else:
        question = _text(row.get(mapping.question)) if mapping.question else ""
        answer = _text(row.get(mapping.answer)) if mapping.answer else ""
    if mapping.image_token:
        question = question.replace(mapping.image_token, " ")
    question = re.sub(r"[ \t]+\n", "\n", question).strip()
    context = _text(row.get(mapping.context)).strip() if mapping.context else ""
    if question and context:
        question = f"Context: {context}\n\n{question}"
    choices = [_text(c) for c in _as_list(row.get(mapping.choices))] if mapping.choices else []
    if choices and mapping.append_choices:
        options = "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(choices))
        question = f"{question}\nChoices:\n{options}"
    if mapping.answer_index:
        answer = _option_letter(row.get(mapping.answer), len(choices), index, mapping)
    images: list[dict[str, Any] | None] = []
    reason = "" if question else "missing_question"
    detail = "" if question else f"row {index}: column {mapping.question or mapping.conversations!r} is empty"
    for value in _as_list(row.get(mapping.images)) if mapping.images else []:
        try:
            images.append({"bytes": to_image_bytes(value, image_root), "path": None})
        except (MissingImageError, UnreadableImageError) as exc:
            images.append(None)
            if not reason:
                reason = "missing_image" if isinstance(exc, MissingImageError) else "unreadable_image"
                detail = f"row {index}: {exc}"
        except TypeError as exc:
            raise DataError(
                f"row {index}, column {mapping.images!r} (source.columns.images): {exc}; an image is a "
                "path, bytes, a PIL image or a {bytes, path} dict (or a list of them). Map the column "
                "that holds the pictures, or set source.columns.images: null for text-only rows"
            ) from exc
    raw_id = row.get(mapping.id) if mapping.id else None
    out: dict[str, Any] = {
        "prompt": user_prompt(question, len(images), system_prompt),
        "images": images,
        "solution": _gold(answer, mapping),
        "source": _source(row, mapping),
        "id": _text(raw_id) if raw_id not in (None, "") else f"{mapping.source}-{split}-{index}",
        DROP: reason,
        DROP_DETAIL: detail,
    }
    if mapping.choices:
        out["choices"] = choices
    return out


def _option_letter(value: Any, options: int, index: int, mapping: ColumnMapping) -> str:
    """The letter of option `value` (a 0-based index), or a `DataError` naming the row and column."""
    try:
        position = int(value)
    except (TypeError, ValueError):
        position = -1
    if not 0 <= position < options or isinstance(value, bool):
        raise DataError(
            f"row {index}, column {mapping.answer!r} (source.columns.answer): {value!r} is not the index of one "
            f"of its {options} options (source.columns.answer_index is set); map the column holding the "
            "option index, or unset answer_index if it holds the answer itself"
        )
    return chr(ord("A") + position)


def _source(row: dict[str, Any], mapping: ColumnMapping) -> str:
    """``<source>/<domain>`` when the mapping reads a domain and the row has one, else ``<source>``."""
    if not mapping.domain:
        return mapping.source
    value = _text(row.get(mapping.domain)).strip()
    if mapping.domain_regex and value:
        match = re.search(mapping.domain_regex, value)
        value = match.group(1).strip() if match and match.groups() else ""
    return f"{mapping.source}/{value}" if value else mapping.source


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
    """Fail before any row is mapped, naming the mapping field, when a mapped column is not in the
    source or no column gives the gold answer (every row would have an empty ``solution``)."""
    have = set(column_names)
    if not (mapping.answer or mapping.conversations):
        raise DataError(
            f"{where}: no gold-answer column is mapped (source.columns.answer is null), so every row "
            f"would have an empty solution and nothing could verify it; set source.columns.answer to "
            f"the column holding the answer (the source has {sorted(have)})"
        )
    wanted = {
        name: getattr(mapping, name)
        for name in ("question", "answer", "images", "id", "choices", "conversations", "context", "domain")
        if getattr(mapping, name)
    }
    if mapping.conversations:
        wanted.pop("question", None)
        wanted.pop("answer", None)
    missing = {k: v for k, v in wanted.items() if v not in have}
    if missing:
        fields = ", ".join(f"columns.{k}={v!r}" for k, v in missing.items())
        raise DataError(
            f"{where}: mapped column(s) not in the source ({fields}); the source has {sorted(have)}. "
            "Fix source.columns or pick the right source.mapping."
        )


def prepare_mapping(
    column_names: Sequence[str], mapping: ColumnMapping, where: str
) -> tuple[ColumnMapping, list[str]]:
    """The mapping as it will run on this source (its image column found, `with_image_column`) and
    the image columns it ignores; fails like `check_columns` when it cannot run."""
    mapping, ignored = with_image_column(mapping, list(column_names), where)
    check_columns(column_names, mapping, where)
    return mapping, ignored


def check_unique_ids(dataset: Any, mapping: ColumnMapping, where: str) -> None:
    """Refuse a mapped id column with repeated values: ids must be unique within a source (chunked
    generation, preference-pair ids and eval joins key rows by them)."""
    if not mapping.id:
        return
    seen: set[str] = set()
    for index, value in enumerate(dataset[mapping.id]):
        if value in (None, ""):
            continue
        key = _text(value)
        if key in seen:
            raise DataError(
                f"{where}: column {mapping.id!r} (source.columns.id) repeats the id {key!r} (row {index}); "
                "map a column whose values are unique, or set source.columns.id: null to number the rows"
            )
        seen.add(key)


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
    """Map a loaded source `datasets.Dataset` to canonical rows (with the ``_drop_reason`` and
    ``_drop_detail`` columns)."""
    check_columns(dataset.column_names, mapping, where)
    dataset = _undecoded(dataset, mapping.images)
    try:
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
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from exc


def _with_drop(features: Any) -> Any:
    from datasets import Features, Value

    return Features({**features, DROP: Value("string"), DROP_DETAIL: Value("string")})
