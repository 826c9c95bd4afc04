"""ViT + MLP projector + Qwen2 LLM families: InternVL (the papers' layout), LLaVA, LLaVA-OneVision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skywork_rl.families.base import HF_LLAVA_LIKE, IMAGE_SIZE, PATCH_SIZE, VISION, Family, TinyFamily, Tokens
from skywork_rl.families.chat_formats import CHATML

if TYPE_CHECKING:  # annotations only: the family files import no transformers until a recipe is built
    from transformers import PretrainedConfig, PreTrainedTokenizerFast

_GRID = (IMAGE_SIZE // PATCH_SIZE) ** 2  # 16 patches per 56 px image
_INTERNVL_IMAGE_TOKENS = int(_GRID * 0.5**2)  # pixel shuffle with downsample_ratio 0.5


def _internvl_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import InternVLConfig

    return InternVLConfig(
        vision_config={
            **VISION,
            "model_type": "internvl_vision",
            "image_size": [IMAGE_SIZE, IMAGE_SIZE],
            "patch_size": [PATCH_SIZE, PATCH_SIZE],
        },
        text_config=tokens.text_config(model_type="qwen2"),
        image_token_id=tokens["<IMG_CONTEXT>"],
        image_seq_length=_INTERNVL_IMAGE_TOKENS,
        downsample_ratio=0.5,
        tie_word_embeddings=True,
    )


def _internvl_processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    return InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=False, max_patches=1),
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(size=size),
        image_seq_length=_INTERNVL_IMAGE_TOKENS,
        chat_template=template,
    )


def _llava_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import LlavaConfig

    return LlavaConfig(
        vision_config={
            **VISION,
            "model_type": "clip_vision_model",
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "projection_dim": 32,
        },
        text_config=tokens.text_config(model_type="qwen2"),
        image_token_id=tokens["<image>"],
        image_seq_length=_GRID,
        vision_feature_select_strategy="default",
        tie_word_embeddings=True,
    )


def _llava_processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import CLIPImageProcessor, LlavaProcessor

    return LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
        ),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=template,
    )


# AnyRes: a 112 px image becomes the 56 px base view plus a 2x2 grid of 56 px tiles, as the real
# 384 px checkpoints tile larger images; the processor and the model must agree on the token count.
_PINPOINTS = [
    [IMAGE_SIZE, IMAGE_SIZE],
    [IMAGE_SIZE, 2 * IMAGE_SIZE],
    [2 * IMAGE_SIZE, IMAGE_SIZE],
    [2 * IMAGE_SIZE] * 2,
]


def _onevision_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import LlavaOnevisionConfig

    return LlavaOnevisionConfig(
        vision_config={
            **VISION,
            "model_type": "siglip_vision_model",
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "vision_use_head": False,
        },
        text_config=tokens.text_config(model_type="qwen2"),
        image_token_index=tokens["<image>"],
        video_token_index=tokens["<video>"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=_PINPOINTS,
        vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=True,
    )


def _onevision_processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import (
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    return LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=_PINPOINTS),
        tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        num_image_tokens=_GRID,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=template,
    )


INTERNVL = TinyFamily(
    arch="internvl",
    chat=CHATML,
    image_placeholder="<IMG_CONTEXT>",
    image_tokens=("<img>", "</img>", "<IMG_CONTEXT>", "<video>"),
    # InternVLProcessor reads these named tokens from the tokenizer.
    named_tokens={
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    },
    config=_internvl_config,
    processor=_internvl_processor,
    description="InternVL (InternViT + MLP projector + Qwen2), the Skywork R1V layout",
)
LLAVA = TinyFamily(
    arch="llava",
    chat=CHATML,
    image_placeholder="<image>",
    image_tokens=("<image>",),
    named_tokens={"image_token": "<image>"},
    config=_llava_config,
    processor=_llava_processor,
    description="LLaVA (CLIP ViT + MLP projector)",
)
LLAVA_ONEVISION = TinyFamily(
    arch="llava_onevision",
    chat=CHATML,
    image_placeholder="<image>",
    image_tokens=("<image>", "<video>"),
    named_tokens={"image_token": "<image>", "video_token": "<video>"},
    config=_onevision_config,
    processor=_onevision_processor,
    description="LLaVA-OneVision (SigLIP + AnyRes tiles + image_newline + MLP projector)",
)

INTERNVL_SPEC = Family("internvl", parts=HF_LLAVA_LIKE, tiny=INTERNVL)
LLAVA_SPEC = Family("llava", parts=HF_LLAVA_LIKE, tiny=LLAVA)
LLAVA_ONEVISION_SPEC = Family("llava_onevision", parts=HF_LLAVA_LIKE, tiny=LLAVA_ONEVISION)
# LLaVA-NeXT: same layout as LLaVA-OneVision (its `image_newline` too); no tiny recipe.
LLAVA_NEXT_SPEC = Family("llava_next", parts=HF_LLAVA_LIKE)
