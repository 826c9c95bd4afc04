"""The tiny checkpoint recipe of every family the part registry names, keyed by `config.model_type`.

A new family: its recipe in a file beside these (a `TinyFamily`), and one line in `FAMILIES`.
"""

from __future__ import annotations

from skywork_rl.families.base import (
    IMAGE_SIZE,
    PATCH_SIZE,
    REASONING_TOKENS,
    VOCAB_SIZE,
    ChatFormat,
    TinyFamily,
    Tokens,
)
from skywork_rl.families.gemma import GEMMA3, PALIGEMMA_FAMILY
from skywork_rl.families.idefics import IDEFICS3_FAMILY, SMOLVLM_FAMILY
from skywork_rl.families.llava import INTERNVL, LLAVA, LLAVA_ONEVISION
from skywork_rl.families.mistral import MISTRAL3
from skywork_rl.families.qwen_vl import QWEN2_5_VL, QWEN2_VL, QWEN3_VL

FAMILIES: dict[str, TinyFamily] = {
    family.arch: family
    for family in (
        INTERNVL,
        LLAVA,
        LLAVA_ONEVISION,
        QWEN2_VL,
        QWEN2_5_VL,
        QWEN3_VL,
        IDEFICS3_FAMILY,
        SMOLVLM_FAMILY,
        GEMMA3,
        MISTRAL3,
        PALIGEMMA_FAMILY,
    )
}

__all__ = [
    "FAMILIES",
    "IMAGE_SIZE",
    "PATCH_SIZE",
    "REASONING_TOKENS",
    "VOCAB_SIZE",
    "ChatFormat",
    "TinyFamily",
    "Tokens",
]
