"""Mistral 3 (Mistral-Small-3.1): Pixtral ViT + patch merger + projector + Mistral LLM.

The Pixtral processor keeps the image's aspect ratio (longest edge `size.longest_edge`) and writes
one `[IMG]` per merged 28 px cell, `[IMG_BREAK]` after each row and `[IMG_END]` for the last: a
56 px image is `[IMG][IMG][IMG_BREAK][IMG][IMG][IMG_END]`. The model's `multi_modal_projector`
holds the 2x2 patch merger and the two-layer MLP: the whole connector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skywork_rl.families.base import HF_LLAVA_LIKE, IMAGE_SIZE, PATCH_SIZE, VISION, Family, TinyFamily, Tokens
from skywork_rl.families.chat_formats import MISTRAL

if TYPE_CHECKING:  # annotations only: the family files import no transformers until a recipe is built
    from transformers import PretrainedConfig, PreTrainedTokenizerFast

_MERGE = 2


def _config(tokens: Tokens) -> PretrainedConfig:
    from transformers import Mistral3Config

    return Mistral3Config(
        vision_config={
            **VISION,
            "model_type": "pixtral",
            "head_dim": VISION["hidden_size"] // VISION["num_attention_heads"],
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        text_config=tokens.text_config(model_type="mistral", head_dim=16, sliding_window=None),
        image_token_index=tokens["[IMG]"],
        spatial_merge_size=_MERGE,
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )


def _processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import PixtralImageProcessor, PixtralProcessor

    return PixtralProcessor(
        image_processor=PixtralImageProcessor(
            size={"longest_edge": IMAGE_SIZE}, patch_size={"height": PATCH_SIZE, "width": PATCH_SIZE}
        ),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        spatial_merge_size=_MERGE,
        chat_template=template,
    )


MISTRAL3 = TinyFamily(
    arch="mistral3",
    chat=MISTRAL,
    image_placeholder="[IMG]",
    image_tokens=("[IMG]", "[IMG_BREAK]", "[IMG_END]"),
    named_tokens={"image_token": "[IMG]"},
    config=_config,
    processor=_processor,
    description="Mistral 3 (Pixtral ViT + patch merger + MLP projector)",
)

# Mistral 3's projector (`model.multi_modal_projector`) holds its patch merger.
MISTRAL3_SPEC = Family("mistral3", parts=HF_LLAVA_LIKE, tiny=MISTRAL3)
