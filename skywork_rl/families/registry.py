"""Every model family the project knows, keyed by `config.model_type`: one `register_family` line each.

A family's facts (part patterns, capability limits, tiny checkpoint recipe, prefix-LM quirk) live in
one `Family` in its file, `skywork_rl/families/<family>.py`; a new family is that file plus one line
here (a plugin calls `register_family` from its own package). Registering imports nothing: a family's
file is imported the first time it is looked up. `PART_REGISTRY` (`skywork_rl.families.parts`),
`FAMILY_LIMITS` (`skywork_rl.families.capabilities`) and `FAMILIES` below are views of this registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from skywork_rl.families.base import (
    IMAGE_SIZE,
    PATCH_SIZE,
    REASONING_TOKENS,
    VOCAB_SIZE,
    ChatFormat,
    Family,
    PartPatterns,
    TinyFamily,
    Tokens,
)
from skywork_rl.plugins import Registry, RegistryError, load_plugins

# config.model_type -> its Family (or, registered through `register_architecture`, bare PartPatterns)
FAMILY_REGISTRY = Registry("model family", plural="model families", before_lookup=load_plugins)


def register_family(model_type: str, target: str) -> None:
    """Register the `Family` at ``module:attr`` for models whose ``config.model_type`` is `model_type`."""
    FAMILY_REGISTRY.register(model_type, target)


register_family("internvl", "skywork_rl.families.llava:INTERNVL_SPEC")
register_family("llava", "skywork_rl.families.llava:LLAVA_SPEC")
register_family("llava_onevision", "skywork_rl.families.llava:LLAVA_ONEVISION_SPEC")
register_family("qwen2_vl", "skywork_rl.families.qwen_vl:QWEN2_VL_SPEC")
register_family("qwen2_5_vl", "skywork_rl.families.qwen_vl:QWEN2_5_VL_SPEC")
register_family("qwen3_vl", "skywork_rl.families.qwen_vl:QWEN3_VL_SPEC")
register_family("idefics3", "skywork_rl.families.idefics:IDEFICS3_SPEC")
register_family("smolvlm", "skywork_rl.families.idefics:SMOLVLM_SPEC")
register_family("gemma3", "skywork_rl.families.gemma:GEMMA3_SPEC")
register_family("mistral3", "skywork_rl.families.mistral:MISTRAL3_SPEC")
register_family("paligemma", "skywork_rl.families.gemma:PALIGEMMA_SPEC")
register_family("llava_next", "skywork_rl.families.llava:LLAVA_NEXT_SPEC")
register_family("internvl_chat", "skywork_rl.families.internvl_chat:INTERNVL_CHAT_SPEC")
register_family("skywork_chat", "skywork_rl.families.internvl_chat:SKYWORK_CHAT_SPEC")


def family_of(model_type: str | None) -> Family | None:
    """The registered `Family` of `model_type`: None when none is registered, or when only part
    patterns are (`register_architecture`)."""
    if model_type is None or model_type not in FAMILY_REGISTRY:
        return None
    entry = FAMILY_REGISTRY.get(model_type)
    if isinstance(entry, PartPatterns):
        return None
    if not isinstance(entry, Family):
        raise RegistryError(
            f"model family {model_type!r} is registered as {FAMILY_REGISTRY.target(model_type)}, which is a "
            f"{type(entry).__name__}, not a skywork_rl.families.base.Family; point register_family at one"
        )
    if entry.model_type != model_type:
        raise RegistryError(
            f"model family {model_type!r} is registered as {FAMILY_REGISTRY.target(model_type)}, whose "
            f"model_type is {entry.model_type!r}; register it under that name"
        )
    return entry


def families() -> Iterator[Family]:
    """Every registered `Family`, in registration order."""
    for model_type in FAMILY_REGISTRY.targets():
        family = family_of(model_type)
        if family is not None:
            yield family


class _TinyView(Mapping[str, TinyFamily]):
    """model_type -> tiny recipe, for every registered family that has one (registration order)."""

    def _items(self) -> dict[str, TinyFamily]:
        return {family.model_type: family.tiny for family in families() if family.tiny is not None}

    def __getitem__(self, model_type: str) -> TinyFamily:
        return self._items()[model_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())


# The tiny checkpoint recipe of every family that has one, keyed by `config.model_type`.
FAMILIES: Mapping[str, TinyFamily] = _TinyView()

__all__ = [
    "FAMILIES",
    "FAMILY_REGISTRY",
    "IMAGE_SIZE",
    "PATCH_SIZE",
    "REASONING_TOKENS",
    "VOCAB_SIZE",
    "ChatFormat",
    "Family",
    "TinyFamily",
    "Tokens",
    "families",
    "family_of",
    "register_family",
]
