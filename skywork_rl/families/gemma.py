"""Gemma 3 and PaliGemma: SigLIP vision tower + projector + Gemma LLM, Gemma's tokens and turns.

Gemma 3's processor turns each `<start_of_image>` into `\\n\\n<start_of_image>` + `mm_tokens_per_image`
`<image_soft_token>`s + `<end_of_image>\\n\\n`; its projector average-pools the 4x4 patch grid to
2x2 = 4 tokens. PaliGemma puts `image_seq_length` `<image>` tokens first, then `<bos>`, the
prefix and a newline, and attends bidirectionally over that prefix (`token_type_ids`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skywork_rl.families.base import (
    HF_LLAVA_LIKE,
    IMAGE_SIZE,
    PATCH_SIZE,
    VISION,
    Family,
    Limit,
    TinyFamily,
    Tokens,
)
from skywork_rl.families.chat_formats import GEMMA, PALIGEMMA

if TYPE_CHECKING:  # annotations only: the family files import no transformers until a recipe is built
    from transformers import PretrainedConfig, PreTrainedTokenizerFast

_SIGLIP = {
    **VISION,
    "model_type": "siglip_vision_model",
    "image_size": IMAGE_SIZE,
    "patch_size": PATCH_SIZE,
    "vision_use_head": False,
}
_GEMMA3_IMAGE_TOKENS = 4
_PALIGEMMA_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2


def _gemma3_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import Gemma3Config

    return Gemma3Config(
        vision_config=_SIGLIP,
        text_config=tokens.text_config(
            model_type="gemma3_text",
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=512,
            layer_types=["sliding_attention", "full_attention"],  # Gemma 3 interleaves both kinds
        ),
        mm_tokens_per_image=_GEMMA3_IMAGE_TOKENS,
        boi_token_index=tokens["<start_of_image>"],
        eoi_token_index=tokens["<end_of_image>"],
        image_token_index=tokens["<image_soft_token>"],
        tie_word_embeddings=True,
    )


def _gemma3_finish(model: Any) -> None:
    # transformers zero-initialises Gemma 3's projection (real checkpoints load trained values); left
    # at zero, a random tiny model would never see its images.
    import torch

    weight = model.model.multi_modal_projector.mm_input_projection_weight
    with torch.no_grad():
        weight.normal_(std=model.config.initializer_range)


def _gemma3_processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import Gemma3ImageProcessor, Gemma3Processor

    return Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
        image_seq_length=_GEMMA3_IMAGE_TOKENS,
        chat_template=template,
    )


def _paligemma_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import PaliGemmaConfig

    text = tokens.text_config(model_type="gemma", head_dim=16)
    return PaliGemmaConfig(
        vision_config={**_SIGLIP, "projection_dim": text["hidden_size"]},
        text_config=text,
        image_token_index=tokens["<image>"],
        projection_dim=text["hidden_size"],
        hidden_size=text["hidden_size"],
        vocab_size=text["vocab_size"],
        tie_word_embeddings=True,
    )


def _paligemma_processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import PaliGemmaProcessor, SiglipImageProcessor

    image_processor = SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    image_processor.image_seq_length = _PALIGEMMA_IMAGE_TOKENS  # the processor reads it from here
    return PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)


GEMMA3 = TinyFamily(
    arch="gemma3",
    chat=GEMMA,
    image_placeholder="<start_of_image>",
    image_tokens=("<start_of_image>", "<end_of_image>", "<image_soft_token>"),
    named_tokens={
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    },
    config=_gemma3_config,
    processor=_gemma3_processor,
    finish=_gemma3_finish,
    description="Gemma 3 (SigLIP + pooled projector, sliding/full attention, no system role)",
)
PALIGEMMA_FAMILY = TinyFamily(
    arch="paligemma",
    chat=PALIGEMMA,
    image_placeholder="<image>",
    image_tokens=("<image>",),
    named_tokens={"image_token": "<image>"},
    config=_paligemma_config,
    processor=_paligemma_processor,
    description="PaliGemma (SigLIP + linear projector, prefix-LM; prefix/suffix, no chat template of its own)",
)

GEMMA3_SPEC = Family("gemma3", parts=HF_LLAVA_LIKE, tiny=GEMMA3)
# PaliGemma's processor is a prefix/suffix captioning processor; its LLM attends bidirectionally over
# the prefix (`token_type_ids == 0`), which `skywork_rl.trainers.family_inputs` handles.
PALIGEMMA_SPEC = Family(
    "paligemma",
    parts=HF_LLAVA_LIKE,
    tiny=PALIGEMMA_FAMILY,
    prefix_lm=True,
    limits={
        "text_only_inputs": Limit(
            reason=(
                "PaliGemmaProcessor raises on a batch without images and, in a batch with some, inserts its "
                "<bos> into the middle of a prompt that has none"
            ),
            fix="give every row an image (drop the text-only rows) or pick a chat VLM family for text-only data",
        ),
        "assistant_only_loss": Limit(
            reason=(
                "PaliGemmaProcessor inserts <bos> after the images and a newline after the prefix, so the "
                "template's assistant offsets fall on the wrong tokens"
            ),
            fix="leave training.assistant_only_loss off and train on prompt-completion rows (the loss is then "
            "on the completion only)",
        ),
    },
)
