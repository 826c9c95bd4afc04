"""Column mappings: how a source dataset's columns become the canonical schema (skywork_rl/data/schema.py).

A recipe names a built-in mapping (``mapping: mmk12``), overrides some of its fields
(``columns: {question: query}``), or spells out its own for private data. The built-ins cover the
public sets the papers train on or close public stand-ins; each one's column names were read from
the source's dataset card or from public code that loads it (cited per entry).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from skywork_rl.errors import DataError
from skywork_rl.stages.base import RecipeError

IMAGE_COLUMNS: tuple[str, ...] = ("images", "image")


@dataclass(frozen=True)
class ColumnMapping:
    """Which source columns hold the question, the gold answer, the images and the id.

    Attributes:
        question: column of the question text.
        answer: column of the gold answer (or of a worked solution, see `gold_from_solution`).
        images: column of one image or a list of images (PIL, bytes, a path, or a `datasets` dict).
            Left unset, the source's ``images`` or ``image`` column is used if it has one
            (`with_image_column`), so a source's pictures are never dropped unasked.
        ignore_images: load text-only rows even though the source has an ``images``/``image``
            column (a recipe's ``columns: {images: null}`` sets it); the stage says so in one line.
        id: column of a stable id; rows without one get ``<source>-<split>-<row index>``.
        choices: column of option texts for multiple-choice items (letter A is the first).
        conversations: LLaVA-style turns ``[{"from": "human"|"gpt", "value": ...}]``; when set the
            question is the first human turn and the answer the first gpt turn.
        answer_regex: pull the answer out of the answer text (first group), e.g. ``The answer is B``.
        gold_from_solution: the answer column is a worked solution; the gold is its GSM8K
            ``#### x`` line or its last ``\\boxed{}`` (`skywork_rl.rewards.parse_gold`).
        image_token: placeholder the source puts in its text (``<image>``); removed, since the
            canonical prompt carries one ``{"type": "image"}`` part per image instead.
        append_choices: write the options under the question (``A. ...``) when the source keeps
            them only in a separate column.
        answer_index: the answer column holds the 0-based index of the right option; the gold is
            its letter (index 2 -> ``C``), as the options are written.
        context: column of text the question refers to (a passage, a table, a hint); written
            before the question as ``Context: ...`` when not empty.
        domain: column whose value names the row's domain; the canonical ``source`` becomes
            ``<source>/<value>`` (ids keep the plain ``source`` prefix), so a stage can balance
            the domains of one multi-domain set (`mix-data`, the connector stage's ``mix``).
        domain_regex: take the domain from the first group of this regex over the domain column
            (e.g. the first folder of an image path); a row it does not match keeps plain ``source``.
        source: the canonical ``source`` value (also the id prefix).
    """

    question: str | None = "question"
    answer: str | None = "answer"
    images: str | None = None
    ignore_images: bool = False
    id: str | None = None
    choices: str | None = None
    conversations: str | None = None
    answer_regex: str | None = None
    gold_from_solution: bool = False
    image_token: str | None = "<image>"
    append_choices: bool = False
    answer_index: bool = False
    context: str | None = None
    domain: str | None = None
    domain_regex: str | None = None
    source: str = "custom"


BUILTIN_MAPPINGS: dict[str, ColumnMapping] = {
    # FanqingM/MMK12 (MM-Eureka's K-12 set, the kind of data R1V3's RL stage uses): `id`, `subject`,
    # `image`, `question`, `answer`. Public loaders pop exactly `image` and `question` and drop
    # `subject`; lmms-eval notes the test split keeps the options inline in `question` and the
    # letter in `answer`.
    "mmk12": ColumnMapping(question="question", answer="answer", images="image", id="id", source="mmk12"),
    # russwang/ThinkLite-VL-70k: `image` (bytes), `problem` (starts with "<image>"), `answer`; the
    # ThinkLite-VL MCTS script reads `data['image']`, `data['problem'].split('<image>')[1]` and
    # `data['answer']`.
    "thinklite-vl": ColumnMapping(question="problem", answer="answer", images="image", source="thinklite-vl"),
    # hiyouga/geometry3k dataset card: `images` (sequence of image), `problem` (with "<image>"),
    # `answer` (the value), `id`, `choices` (option texts), `ground_truth` (the letter).
    "geometry3k": ColumnMapping(
        question="problem",
        answer="answer",
        images="images",
        id="id",
        choices="choices",
        append_choices=True,
        source="geometry3k",
    ),
    # Zhiqiang007/MathV360K card: `train_samples_all_tuning.json`, a list of LLaVA records with
    # `id`, `image` (a path relative to the unzipped `data_images/`, e.g. "TabMWP/images/1.png")
    # and `conversations` [{from: human, value: "<image>\n..."}, {from: gpt, value: "The answer is B"}].
    "mathv360k": ColumnMapping(
        question=None,
        answer=None,
        images="image",
        id="id",
        conversations="conversations",
        answer_regex=r"(?is)^\s*(?:the\s+)?answer\s*(?:is)?\s*:?\s*(.+?)\s*\.?\s*$",
        source="mathv360k",
    ),
    # openai/gsm8k (also ../shared/data/gsm8k/test.jsonl): `question`, `answer` = reasoning then
    # "#### <number>". Text only.
    "gsm8k": ColumnMapping(question="question", answer="answer", gold_from_solution=True, source="gsm8k"),
    # hendrycks MATH (e.g. DigitalLearningGmbH/MATH-lighteval, HuggingFaceH4/MATH-500): `problem`,
    # `solution` (worked, final answer in \boxed{}), `level`, `type`. Text only.
    "math": ColumnMapping(question="problem", answer="solution", gold_from_solution=True, source="math"),
    # Science sets (R1V3's cold start distils science questions). derek-thomas/ScienceQA card (and its
    # lmms-lab/ScienceQA mirror): `image` (null for text-only items), `question`, `choices` (list of
    # str), `answer` (int8: index of the right choice), `hint` (the context the question refers to),
    # `task`, `grade`, `subject` (natural / social / language science), `topic`, `category`, `skill`,
    # `lecture`, `solution`; splits train 12,726 / validation 4,241 / test 4,241; no id column.
    "scienceqa": ColumnMapping(
        question="question",
        answer="answer",
        images="image",
        choices="choices",
        append_choices=True,
        answer_index=True,
        context="hint",
        source="scienceqa",
    ),
    # allenai/sciq card: `question`, `distractor1..3`, `correct_answer`, `support` (a passage that
    # states the answer: not shown, it would give the answer away); train 11,679. Text only; the gold
    # is the answer text (the options are not written, so the model must produce it).
    "sciq": ColumnMapping(question="question", answer="correct_answer", images=None, source="sciq"),
    # LightChen2333/M3CoT card: `id`, `category`, `image_id`, `question`, `choices` (list of str),
    # `context`, `answer` (the letter), `rationale`, `split`, `image`, `domain` (science,
    # commonsense, mathematics), `topic`; train 7,863. Rows are grouped by `domain`.
    "m3cot": ColumnMapping(
        question="question",
        answer="answer",
        images="image",
        id="id",
        choices="choices",
        append_choices=True,
        context="context",
        domain="domain",
        source="m3cot",
    ),
}


def resolve_mapping(
    name: str | None, overrides: dict[str, Any] | None = None, where: str = "input"
) -> ColumnMapping:
    """The mapping a recipe asks for: a built-in by name, with `overrides` applied field by field.

    Without a name the overrides alone define the mapping (fields left out keep the defaults).
    ``images: null`` (or false) in the overrides means "no images": it sets ``ignore_images``.
    """
    if name:
        key = name.lower().replace("_", "-")
        if key not in BUILTIN_MAPPINGS:
            raise RecipeError(
                f"{where}.mapping: unknown built-in mapping {name!r}; choose one of "
                f"{sorted(BUILTIN_MAPPINGS)} or leave it empty and give source.columns"
            )
        base = BUILTIN_MAPPINGS[key]
    else:
        base = ColumnMapping()
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(ColumnMapping)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise RecipeError(f"{where}.columns: unknown key(s) {unknown}; allowed: {sorted(known)}")
    if "images" in overrides and not overrides["images"]:
        overrides["ignore_images"] = True
    mapping = dataclasses.replace(base, **overrides)
    if mapping.domain_regex and not mapping.domain:
        raise RecipeError(f"{where}.columns.domain_regex needs columns.domain (the column it reads)")
    if mapping.answer_index and not mapping.choices:
        raise RecipeError(f"{where}.columns.answer_index needs columns.choices (the options it indexes)")
    return dataclasses.replace(mapping, images=None) if mapping.ignore_images else mapping


def with_image_column(
    mapping: ColumnMapping, column_names: list[str], where: str
) -> tuple[ColumnMapping, list[str]]:
    """(the mapping with its image column filled in, the source's image columns it ignores).

    A mapping without ``images`` takes the source's ``images`` or ``image`` column: a jsonl with an
    unmapped ``image`` column would otherwise load as text-only rows without a word. With
    ``ignore_images`` the columns are returned so the stage can say it left them out.
    """
    found = [c for c in IMAGE_COLUMNS if c in column_names]
    if mapping.images or not found:
        return mapping, []
    if mapping.ignore_images:
        return mapping, found
    if len(found) > 1:
        raise DataError(
            f"{where}: the source has both {found[0]!r} and {found[1]!r} columns; set "
            "source.columns.images to the one that holds the pictures (or null to load text-only rows)"
        )
    return dataclasses.replace(mapping, images=found[0]), []
