"""Tiny, real Hugging Face VLM checkpoints built from config, for tests and the offline demo.

No hub download is possible on CI, so the project makes its own checkpoints: random weights, the
real model classes (InternVL = vision encoder + MLP projector + Qwen2 LLM, the papers' layout;
LLaVA; Qwen2.5-VL), a BPE tokenizer trained locally with `tokenizers`, a ChatML chat template
that renders images and keeps `<think>...</think>` reasoning, and the real image processor. The
folder is a normal checkpoint: `AutoModelForImageTextToText` / `AutoProcessor` load it by path
through exactly the code that loads a hub model.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PretrainedConfig, PreTrainedTokenizerFast

IMAGE_SIZE = 56  # 4x4 patches of 14 px: enough structure to learn from, small enough for CPU
PATCH_SIZE = 14
VOCAB_SIZE = 1024
TINY_ARCHS = ("internvl", "llava", "qwen2_5_vl")
CONFIG_ONLY_ARCHS = ("idefics3", "gemma3")

# Placeholder each architecture's processor expands into image tokens.
_IMAGE_PLACEHOLDER = {
    "internvl": "<IMG_CONTEXT>",
    "llava": "<image>",
    "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>",
}
_ARCH_SPECIAL_TOKENS = {
    "internvl": ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
    "llava": ["<image>"],
    "qwen2_5_vl": ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
}
_COMMON_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Reasoning tags are ordinary added tokens (not special) so decoding keeps them in completions,
# which is what the format reward and the SFT traces need.
_REASONING_TOKENS = ["<think>", "</think>"]


def chat_template(arch: str) -> str:
    """ChatML with image parts and `{% generation %}` markers (TRL's `assistant_only_loss` needs them)."""
    image = _IMAGE_PLACEHOLDER[arch]
    return (
        "{%- for message in messages -%}"
        "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        "{%- if message['content'] is string -%}"
        "{%- if message['role'] == 'assistant' -%}{% generation %}{{- message['content'] + '<|im_end|>' -}}{% endgeneration %}"
        "{%- else -%}{{- message['content'] + '<|im_end|>' -}}{%- endif -%}"
        "{%- else -%}"
        "{%- if message['role'] == 'assistant' -%}{% generation %}"
        "{%- for part in message['content'] -%}{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}{%- endfor -%}"
        "{{- '<|im_end|>' -}}{% endgeneration %}"
        "{%- else -%}"
        "{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}{{- '" + image + "' -}}"
        "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
        "{%- endfor -%}{{- '<|im_end|>' -}}"
        "{%- endif -%}"
        "{%- endif -%}"
        "{{- '\\n' -}}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
    )


def _training_corpus() -> Iterator[str]:
    """Text shaped like what the tiny model will see: questions, reasoning, boxed answers, digits."""
    from skywork_rl.synthetic import corpus_for_tokenizer

    yield from corpus_for_tokenizer()


def build_tokenizer(arch: str) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer locally (no download) and wrap it as a HF fast tokenizer."""
    specials = _COMMON_SPECIAL_TOKENS + _ARCH_SPECIAL_TOKENS[arch]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(_REASONING_TOKENS),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    extra: dict[str, Any] = {}
    if arch == "internvl":
        # InternVLProcessor reads these named tokens from the tokenizer.
        extra["extra_special_tokens"] = {
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        }
    elif arch == "llava":
        extra["extra_special_tokens"] = {"image_token": "<image>"}
    elif arch == "qwen2_5_vl":
        extra["extra_special_tokens"] = {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        }
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=4096,
        padding_side="left",
        **extra,
    )
    fast.add_tokens(_REASONING_TOKENS)
    fast.chat_template = chat_template(arch)
    return fast


def _text_config(vocab_size: int, eos_id: int, pad_id: int) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "bos_token_id": None,
        "tie_word_embeddings": True,
    }


def tiny_config(arch: str, tokenizer: PreTrainedTokenizerFast | None = None) -> PretrainedConfig:
    """The config of a tiny model of `arch` (also for config-only archs used by connector tests)."""
    from transformers import (
        Gemma3Config,
        Idefics3Config,
        InternVLConfig,
        LlavaConfig,
        Qwen2_5_VLConfig,
    )

    vocab = len(tokenizer) if tokenizer is not None else VOCAB_SIZE
    eos = tokenizer.eos_token_id if tokenizer is not None else 2
    pad = tokenizer.pad_token_id if tokenizer is not None else 0
    text = _text_config(vocab, eos, pad)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}

    def token_id(token: str, default: int) -> int:
        return tokenizer.convert_tokens_to_ids(token) if tokenizer is not None else default

    if arch == "internvl":
        return InternVLConfig(
            vision_config={
                **vision,
                "model_type": "internvl_vision",
                "image_size": [IMAGE_SIZE, IMAGE_SIZE],
                "patch_size": [PATCH_SIZE, PATCH_SIZE],
            },
            text_config={**text, "model_type": "qwen2"},
            image_token_id=token_id("<IMG_CONTEXT>", vocab - 1),
            image_seq_length=_internvl_image_seq_length(),
            downsample_ratio=0.5,
            tie_word_embeddings=True,
        )
    if arch == "llava":
        return LlavaConfig(
            vision_config={
                **vision,
                "model_type": "clip_vision_model",
                "image_size": IMAGE_SIZE,
                "patch_size": PATCH_SIZE,
                "projection_dim": 32,
            },
            text_config={**text, "model_type": "qwen2"},
            image_token_id=token_id("<image>", vocab - 1),
            image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
            vision_feature_select_strategy="default",
            tie_word_embeddings=True,
        )
    if arch == "qwen2_5_vl":
        return Qwen2_5_VLConfig(
            vision_config={
                "depth": 1,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "out_hidden_size": text["hidden_size"],
                "patch_size": PATCH_SIZE,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "window_size": 56,
                "fullatt_block_indexes": [0],
            },
            text_config={**text, "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]}},
            image_token_id=token_id("<|image_pad|>", vocab - 1),
            video_token_id=token_id("<|video_pad|>", vocab - 2),
            vision_start_token_id=token_id("<|vision_start|>", vocab - 3),
            vision_end_token_id=token_id("<|vision_end|>", vocab - 4),
            tie_word_embeddings=True,
        )
    if arch == "idefics3":
        return Idefics3Config(
            vision_config={**vision, "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE},
            text_config={**text, "model_type": "llama"},
            scale_factor=2,
        )
    if arch == "gemma3":
        return Gemma3Config(
            vision_config={**vision, "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE},
            text_config={**text, "head_dim": 16, "sliding_window": 64},
            mm_tokens_per_image=4,
        )
    raise ValueError(f"unknown tiny arch {arch!r}; choose from {TINY_ARCHS + CONFIG_ONLY_ARCHS}")


def _internvl_image_seq_length() -> int:
    return int((IMAGE_SIZE // PATCH_SIZE) ** 2 * 0.5**2)


def _processor(arch: str, tokenizer: PreTrainedTokenizerFast) -> Any:
    template = chat_template(arch)
    if arch == "internvl":
        from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

        image_processor = GotOcr2ImageProcessor(
            size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, crop_to_patches=False, max_patches=1
        )
        video_processor = InternVLVideoProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
        return InternVLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            image_seq_length=_internvl_image_seq_length(),
            chat_template=template,
        )
    if arch == "llava":
        from transformers import CLIPImageProcessor, LlavaProcessor

        image_processor = CLIPImageProcessor(
            size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
        )
        return LlavaProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=PATCH_SIZE,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
            chat_template=template,
        )
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        pixels = IMAGE_SIZE * IMAGE_SIZE
        image_processor = Qwen2VLImageProcessor(
            min_pixels=pixels, max_pixels=pixels, patch_size=PATCH_SIZE, merge_size=2, temporal_patch_size=2
        )
        video_processor = Qwen2VLVideoProcessor(patch_size=PATCH_SIZE, merge_size=2, temporal_patch_size=2)
        return Qwen2_5_VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=template,
        )
    raise ValueError(f"no processor recipe for arch {arch!r}; choose from {TINY_ARCHS}")


def make_tiny_model(arch: str = "internvl", out_dir: str | Path = "tiny-model", seed: int = 0) -> Path:
    """Write a complete tiny checkpoint folder for `arch` and return its path."""
    from transformers import AutoModelForImageTextToText

    if arch not in TINY_ARCHS:
        raise ValueError(f"make_tiny_model: unknown arch {arch!r}; choose from {list(TINY_ARCHS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(arch)
    config = tiny_config(arch, tokenizer)
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    processor = _processor(arch, tokenizer)
    processor.save_pretrained(out)
    (out / "tiny_model.json").write_text(json.dumps({"arch": arch, "seed": seed, "made_by": "skywork-rl"}))
    return out


def main(argv: list[str] | None = None) -> int:
    """`skywork-rl make-tiny-model`: write a tiny random-weight VLM checkpoint folder."""
    parser = argparse.ArgumentParser(
        prog="skywork-rl make-tiny-model",
        description=(
            "Write a tiny random-weight VLM checkpoint (real model class, locally trained tokenizer, "
            "chat template with images and <think>, image processor) that loads by path like a hub model. "
            "Used by the tests and the offline demo pipeline."
        ),
    )
    parser.add_argument(
        "--arch", default="internvl", choices=TINY_ARCHS, help="architecture (default: internvl)"
    )
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    args = parser.parse_args(argv)
    path = make_tiny_model(args.arch, args.out, seed=args.seed)
    n = sum(p.numel() for p in _load_for_count(path).parameters())
    print(f"wrote tiny {args.arch} checkpoint to {path} ({n:,} parameters)")
    return 0


def _load_for_count(path: Path) -> torch.nn.Module:
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(path)
