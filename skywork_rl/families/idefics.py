"""Idefics3 and SmolVLM: SigLIP-style ViT, pixel-shuffle connector, images split into tiles.

Their processors resize an image so its longest edge is `size.longest_edge`, cut it into tiles of
`max_image_size` and add the whole image, downscaled, as a global view; each view becomes
`<fake_token_around_image><row_i_col_j>` + `image_seq_len` `<image>` tokens. Here a 112 px image
gives 2x2 tiles of 56 px plus the global view: 5 views of (56/14)^2 / 2^2 = 4 tokens each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skywork_rl.families.base import IMAGE_SIZE, PATCH_SIZE, VISION, Family, PartPatterns, TinyFamily, Tokens
from skywork_rl.families.chat_formats import IDEFICS3, SMOLVLM

if TYPE_CHECKING:  # annotations only: the family files import no transformers until a recipe is built
    from transformers import PretrainedConfig, PreTrainedTokenizerFast

_SCALE = 2  # pixel-shuffle factor of the connector
_IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH_SIZE) ** 2 // _SCALE**2
_TILING = {"size": {"longest_edge": 2 * IMAGE_SIZE}, "max_image_size": {"longest_edge": IMAGE_SIZE}}
# The processors address at most 6x6 tiles.
_ROW_COL = tuple(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7))
_IMAGE_TOKENS = ("<fake_token_around_image>", "<image>", "<global-img>", *_ROW_COL)


def _config(kind: str) -> Any:
    def build(tokens: Tokens) -> PretrainedConfig:
        import transformers

        return getattr(transformers, kind)(
            vision_config={**VISION, "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE},
            text_config=tokens.text_config(model_type="llama"),
            image_token_id=tokens["<image>"],
            scale_factor=_SCALE,
            tie_word_embeddings=True,
        )

    return build


def _idefics3_processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    return Idefics3Processor(
        image_processor=Idefics3ImageProcessor(do_image_splitting=True, **_TILING),
        tokenizer=tokenizer,
        image_seq_len=_IMAGE_SEQ_LEN,
        chat_template=template,
    )


def _smolvlm_processor(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
    from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    return SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(do_image_splitting=True, **_TILING),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(**_TILING),
        image_seq_len=_IMAGE_SEQ_LEN,
        chat_template=template,
    )


IDEFICS3_FAMILY = TinyFamily(
    arch="idefics3",
    chat=IDEFICS3,
    image_placeholder="<image>",
    image_tokens=_IMAGE_TOKENS,
    named_tokens={"image_token": "<image>"},
    config=_config("Idefics3Config"),
    processor=_idefics3_processor,
    description="Idefics3 (SigLIP + pixel-shuffle connector, image tiles + global view)",
)
SMOLVLM_FAMILY = TinyFamily(
    arch="smolvlm",
    chat=SMOLVLM,
    image_placeholder="<image>",
    image_tokens=(*_IMAGE_TOKENS, "<video>"),
    # SmolVLMProcessor reads these from the tokenizer (falling back to the same strings).
    named_tokens={
        "image_token": "<image>",
        "fake_image_token": "<fake_token_around_image>",
        "global_image_token": "<global-img>",
        "end_of_utterance_token": "<end_of_utterance>",
        "video_token": "<video>",
    },
    config=_config("SmolVLMConfig"),
    processor=_smolvlm_processor,
    description="SmolVLM (the Idefics3 layout; its processor needs num2words)",
)

# Idefics3 / SmolVLM: the pixel-shuffle + linear `model.connector.modality_projection`.
IDEFICS3_PARTS = PartPatterns(
    vision=(r"model\.vision_model\.",),
    connector=(r"model\.connector\.",),
    llm=(r"model\.text_model\.", r"lm_head\."),
)
IDEFICS3_SPEC = Family("idefics3", parts=IDEFICS3_PARTS, tiny=IDEFICS3_FAMILY)
SMOLVLM_SPEC = Family("smolvlm", parts=IDEFICS3_PARTS, tiny=SMOLVLM_FAMILY)
