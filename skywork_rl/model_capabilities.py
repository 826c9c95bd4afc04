"""What each family's processor can and cannot do for the stages, so a stage refuses in one line.

Every family the part registry names trains through the same TRL code paths, but a few processors
cannot serve some of them. PaliGemma's, for one, is a prefix/suffix captioning processor: it
refuses text without an image, which TRL's prompt-completion collators need (they tokenize the
completion alone), and it rewrites the text (`<bos>` after the images, a newline after the prefix),
so the chat template's assistant mask lands on the wrong tokens; and its prefix-LM attention reads
TRL's zero `token_type_ids` over a GRPO completion as prefix, so the completion's log-probs see
its future tokens. A stage that needs such a thing
calls `check_family_capabilities` before loading data or training and the user reads, in one line,
which capability is missing, why, and what to do, instead of a traceback from inside a collator.

The limits were found by running each family's tiny checkpoint (`skywork_rl.tiny`) through the
trainers; a family not listed here has shown no limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from skywork_rl.errors import SkyworkError

# Capability -> what it lets a stage do (completes "cannot ...").
CAPABILITIES: dict[str, str] = {
    "text_only_inputs": (
        "tokenize text without an image through its processor (TRL's SFT/connector/MPO collators "
        "tokenize each completion that way; text-only rows need it too)"
    ),
    "multi_image": "take several images in one sample",
    "assistant_only_loss": "mark the assistant's tokens from its chat template (training.assistant_only_loss)",
    "chat_template": "render conversational rows (its processor has no chat template)",
    "causal_completion_scoring": (
        "have its completions scored causally by TRL's GRPO (the loss forward over prompt + completion)"
    ),
}


@dataclass(frozen=True)
class Limit:
    """Why a family lacks a capability, and what the user can do instead."""

    reason: str
    fix: str


FAMILY_LIMITS: dict[str, dict[str, Limit]] = {
    "paligemma": {
        "text_only_inputs": Limit(
            reason="PaliGemmaProcessor raises unless images are passed (it is a prefix/suffix processor)",
            fix="train PaliGemma with GRPO (prompts with an image), or pick a chat VLM family for SFT",
        ),
        "assistant_only_loss": Limit(
            reason=(
                "PaliGemmaProcessor inserts <bos> after the images and a newline after the prefix, so the "
                "template's assistant offsets fall on the wrong tokens"
            ),
            fix="leave training.assistant_only_loss off and train on prompt-completion rows",
        ),
        "causal_completion_scoring": Limit(
            reason=(
                "TRL extends token_type_ids over the completion with 0, which PaliGemma reads as its "
                "bidirectional prefix, so each completion token's log-prob sees the tokens after it"
            ),
            fix="use a family without a prefix-LM (e.g. gemma3) for GRPO until the trainer marks completions 1",
        ),
    },
}


class FamilyCapabilityError(SkyworkError, ValueError):
    """The model's family cannot do something the stage needs."""


def missing_capabilities(
    model_type: str | None, needs: Iterable[str], processor: Any = None
) -> dict[str, Limit]:
    """The needed capabilities this family (and, when given, this processor) lacks, with their reasons."""
    needs = list(needs)
    unknown = [n for n in needs if n not in CAPABILITIES]
    if unknown:
        raise ValueError(f"unknown capability {unknown}; known: {sorted(CAPABILITIES)}")
    limits = FAMILY_LIMITS.get(model_type or "", {})
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
