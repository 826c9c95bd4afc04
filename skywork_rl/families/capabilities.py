"""What each family's processor can and cannot do for the stages, so a stage refuses in one line.

Every family the part registry names trains through the same TRL code paths, but a few processors
cannot serve some of them. PaliGemma's, for one, is a prefix/suffix captioning processor: it
refuses text without an image, so rows without an image cannot reach it, and it rewrites the text
(`<bos>` after the images, a newline after the prefix), so a chat template's assistant mask lands
on the wrong tokens. A stage that needs such a thing checks it before training or generating
(`TrainingStage.check_family`, `check_generator_family`), and the user reads, in one line, which
capability is missing, why, and what to do, instead of a traceback from inside a collator.

What could be fixed is fixed instead of refused: PaliGemma's prefix-LM attention (`is_prefix_lm`)
is handled by `skywork_rl.trainers.family_inputs`, which tokenizes completions as the causal suffix in
SFT / connector / MPO and scores GRPO completions causally.

The limits were found by running each family's tiny checkpoint (`skywork_rl.miniature.tiny`) through the
stages; `tests/families` checks that each recorded limit still holds in the installed
transformers/TRL. Each limit is declared in its family's file (`Family.limits` in
`skywork_rl/families/<family>.py`, e.g. PaliGemma's in `gemma.py`); a family with none has shown no limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from skywork_rl.errors import SkyworkError
from skywork_rl.families.base import Limit
from skywork_rl.families.registry import families, family_of

# Capability -> what it lets a stage do (completes "cannot ...").
CAPABILITIES: dict[str, str] = {
    "text_only_inputs": "take a prompt without an image (rows whose `images` list is empty)",
    "multi_image": "take several images in one sample",
    "assistant_only_loss": "mark the assistant's tokens from its chat template (training.assistant_only_loss)",
    "chat_template": "render conversational rows (its processor has no chat template)",
}


class _LimitsView(Mapping[str, Mapping[str, Limit]]):
    """model_type -> {capability: Limit}, for every registered family with a limit (its `Family.limits`)."""

    def _items(self) -> dict[str, Mapping[str, Limit]]:
        return {family.model_type: family.limits for family in families() if family.limits}

    def __getitem__(self, model_type: str) -> Mapping[str, Limit]:
        return self._items()[model_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())


# What each family cannot do, from the `limits` of its `Family` (`skywork_rl/families/<family>.py`).
FAMILY_LIMITS: Mapping[str, Mapping[str, Limit]] = _LimitsView()


class FamilyCapabilityError(SkyworkError, ValueError):
    """The model's family cannot do something the stage needs."""


def is_prefix_lm(model: Any) -> bool:
    """Whether `model` (a model, possibly wrapped by DDP / DeepSpeed, or a `model_type`) is a prefix-LM."""
    if not (isinstance(model, str) or model is None):
        while getattr(model, "config", None) is None and hasattr(model, "module"):
            model = model.module
        model = getattr(getattr(model, "config", None), "model_type", None)
    family = family_of(model)
    return family is not None and family.prefix_lm


def missing_capabilities(
    model_type: str | None, needs: Iterable[str], processor: Any = None
) -> dict[str, Limit]:
    """The needed capabilities this family (and, when given, this processor) lacks, with their reasons."""
    needs = list(needs)
    unknown = [n for n in needs if n not in CAPABILITIES]
    if unknown:
        raise ValueError(f"unknown capability {unknown}; known: {sorted(CAPABILITIES)}")
    family = family_of(model_type)
    limits = family.limits if family is not None else {}
    missing = {need: limits[need] for need in needs if need in limits}
    if "chat_template" in needs and processor is not None and not getattr(processor, "chat_template", None):
        missing["chat_template"] = Limit(
            reason=f"the {type(processor).__name__} of this checkpoint has no chat_template",
            fix="give the processor a chat template (processor.chat_template = ...; save it beside the model)",
        )
    return missing


def check_family_capabilities(
    model_type: str | None, needs: Iterable[str], *, where: str = "this stage", processor: Any = None
) -> None:
    """Raise `FamilyCapabilityError` (one line: what, why, fix) if the family lacks a needed capability."""
    missing = missing_capabilities(model_type, needs, processor)
    if not missing:
        return
    need, limit = next(iter(missing.items()))
    more = f" (also missing: {', '.join(list(missing)[1:])})" if len(missing) > 1 else ""
    raise FamilyCapabilityError(
        f"{where}: {model_type} models cannot {CAPABILITIES[need]}: {limit.reason}. Fix: {limit.fix}.{more}"
    )


def data_needs(dataset: Any) -> list[str]:
    """What the rows of `dataset` need of a model family: `chat_template` when they are conversational,
    `text_only_inputs` when a row has no image, `multi_image` when one has several (an `images` list
    or an `image` column). Reads the features and the image counts from Arrow: no image is decoded."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets import Value

    if dataset is None or len(dataset) == 0:
        return []
    needs = []
    text = next((c for c in ("prompt", "messages") if c in dataset.column_names), None)
    if text is not None and not isinstance(dataset.features[text], Value):
        needs.append("chat_template")
    image_column = next((c for c in ("images", "image") if c in dataset.column_names), None)
    if image_column is None:
        return [*needs, "text_only_inputs"]
    column = dataset.with_format("arrow")[image_column]
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        column = pa.chunked_array([pc.if_else(pc.is_null(c), None, pa.scalar([0])) for c in column.chunks])
    counts = pc.fill_null(pc.list_value_length(column), 0)
    if pc.min(counts).as_py() == 0:
        needs.append("text_only_inputs")
    if pc.max(counts).as_py() > 1:
        needs.append("multi_image")
    return needs


def model_type_of(name_or_path: str, trust_remote_code: bool = False) -> str | None:
    """The `config.model_type` of a checkpoint, read from its config alone (no weights are loaded)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code).model_type


def check_generator_family(model: Any, dataset: Any, *, where: str) -> None:
    """For a stage that generates with a checkpoint (rollouts, distillation): refuse, before any row is
    generated, rows its family cannot take (e.g. PaliGemma and rows without an image).

    `model` is the stage's `model:` group (`name_or_path`, `backend`, `trust_remote_code`). A user
    backend (``module:Class``, e.g. an API-served teacher) is not a checkpoint: nothing to check. A
    config that cannot be read is left to the backend, whose model load then names the problem."""
    # Only what the family's limits can refuse: a chat template is the processor's (not loaded here).
    needs = [n for n in data_needs(dataset) if n != "chat_template"]
    if not needs or ":" in getattr(model, "backend", "transformers"):
        return
    try:
        model_type = model_type_of(model.name_or_path, getattr(model, "trust_remote_code", False))
    except (OSError, ValueError):
        return
    check_family_capabilities(model_type, needs, where=where)


def rows_needs(rows: Iterable[dict[str, Any]]) -> list[str]:
    """What a list of canonical rows needs of a model family: `text_only_inputs` when a row has no
    image, `multi_image` when one has several (the row-list form of `data_needs`, chat template aside)."""
    counts = [len(row.get("images") or []) for row in rows]
    needs = []
    if counts and min(counts) == 0:
        needs.append("text_only_inputs")
    if counts and max(counts) > 1:
        needs.append("multi_image")
    return needs


def check_checkpoint_family(
    name_or_path: str, rows: Sequence[dict[str, Any]], *, where: str, trust_remote_code: bool = False
) -> None:
    """Before generating with checkpoint `name_or_path` on `rows`: refuse, in one line, rows its family
    cannot take (PaliGemma and text-only benchmark rows). A config that cannot be read is left to the
    model load, which then names the problem."""
    needs = rows_needs(rows)
    if not needs:
        return
    try:
        model_type = model_type_of(name_or_path, trust_remote_code)
    except (OSError, ValueError):
        return
    check_family_capabilities(model_type, needs, where=where)
