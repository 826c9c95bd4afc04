"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL: native-resolution ViT whose patch merger (the connector) sits inside it.

Images are resized to a fixed pixel budget so every image gives the same small grid: 56x56 for
14 px patches, 16 patches merged 2x2 into 4 LLM tokens. Qwen3-VL uses 16 px patches, so its budget
is 64x64 (again 16 patches, 4 tokens), and its DeepStack merger feeds the vision layer's features
into the first LLM layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skywork_rl.families.base import IMAGE_SIZE, PATCH_SIZE, Family, PartPatterns, TinyFamily, Tokens
from skywork_rl.families.chat_formats import CHATML

if TYPE_CHECKING:  # annotations only: the family files import no transformers until a recipe is built
    from transformers import PretrainedConfig, PreTrainedTokenizerFast

_QWEN3_PATCH = 16
_QWEN3_IMAGE = 4 * _QWEN3_PATCH
# mrope splits the rotary half-dimension (head_dim 16 -> 8) over (time, height, width).
_MROPE = {"rope_type": "default", "mrope_section": [2, 3, 3]}


def _ids(tokens: Tokens) -> dict[str, int]:
    return {
        "image_token_id": tokens["<|image_pad|>"],
        "video_token_id": tokens["<|video_pad|>"],
        "vision_start_token_id": tokens["<|vision_start|>"],
        "vision_end_token_id": tokens["<|vision_end|>"],
    }


def _qwen2_vl_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 64,  # the merger's output: the LLM width
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config=tokens.text_config(model_type="qwen2_vl_text", rope_parameters=_MROPE),
        tie_word_embeddings=True,
        **_ids(tokens),
    )


def _qwen2_5_vl_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": IMAGE_SIZE,
            "fullatt_block_indexes": [0],
        },
        text_config=tokens.text_config(rope_parameters=_MROPE),
        tie_word_embeddings=True,
        **_ids(tokens),
    )


def _qwen3_vl_config(tokens: Tokens) -> PretrainedConfig:
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": _QWEN3_PATCH,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 16,  # a 4x4 learned position grid, interpolated to the image's
            "deepstack_visual_indexes": [0],
        },
        text_config=tokens.text_config(
            head_dim=16, rope_parameters={**_MROPE, "mrope_interleaved": True, "rope_theta": 5_000_000.0}
        ),
        tie_word_embeddings=True,
        **_ids(tokens),
    )


def _processor(kind: str, patch: int, side: int) -> Any:
    def build(tokenizer: PreTrainedTokenizerFast, template: str) -> Any:
        import transformers

        pixels = side * side
        grid = {"patch_size": patch, "merge_size": 2, "temporal_patch_size": 2}
        image_processor = transformers.Qwen2VLImageProcessor(
            size={"shortest_edge": pixels, "longest_edge": pixels}, **grid
        )
        video_class = "Qwen3VLVideoProcessor" if kind == "Qwen3VLProcessor" else "Qwen2VLVideoProcessor"
        video_processor = getattr(transformers, video_class)(**grid)
        return getattr(transformers, kind)(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=template,
        )

    return build


def _family(arch: str, config: Any, processor: Any, description: str) -> TinyFamily:
    return TinyFamily(
        arch=arch,
        chat=CHATML,
        image_placeholder="<|vision_start|><|image_pad|><|vision_end|>",
        image_tokens=("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"),
        named_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
        config=config,
        processor=processor,
        description=description,
    )


QWEN2_VL = _family(
    "qwen2_vl",
    _qwen2_vl_config,
    _processor("Qwen2VLProcessor", PATCH_SIZE, IMAGE_SIZE),
    "Qwen2-VL (ViT with 2x2 patch merger, M-RoPE)",
)
QWEN2_5_VL = _family(
    "qwen2_5_vl",
    _qwen2_5_vl_config,
    _processor("Qwen2_5_VLProcessor", PATCH_SIZE, IMAGE_SIZE),
    "Qwen2.5-VL (window-attention ViT, patch merger)",
)
QWEN3_VL = _family(
    "qwen3_vl",
    _qwen3_vl_config,
    _processor("Qwen3VLProcessor", _QWEN3_PATCH, _QWEN3_IMAGE),
    "Qwen3-VL (patch merger + DeepStack mergers into the first LLM layers)",
)

# Qwen2/2.5/3-VL keep the merger (their connector) inside `model.visual`; Qwen3-VL adds the DeepStack
# mergers that feed intermediate vision features to the first LLM layers (connectors too).
QWEN_VL_PARTS = PartPatterns(
    vision=(r"model\.visual\.(?!merger\.|deepstack_merger_list\.)",),
    connector=(r"model\.visual\.merger\.", r"model\.visual\.deepstack_merger_list\."),
    llm=(r"model\.language_model\.", r"lm_head\."),
)
QWEN2_VL_SPEC = Family("qwen2_vl", parts=QWEN_VL_PARTS, tiny=QWEN2_VL)
# Qwen2.5-VL's vision blocks use a SwiGLU MLP (its vision config's model_type is "qwen2_5_vl" too).
QWEN2_5_VL_SPEC = Family("qwen2_5_vl", parts=QWEN_VL_PARTS, tiny=QWEN2_5_VL, vision_gated_mlp=True)
QWEN3_VL_SPEC = Family("qwen3_vl", parts=QWEN_VL_PARTS, tiny=QWEN3_VL)
