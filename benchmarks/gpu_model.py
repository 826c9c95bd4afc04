"""The benchmark's model: a checkpoint, or random weights at a real size from a config (no download).

`--arch-config` names a transformers ``config.json`` (or one of benchmarks/arch/); the model class
`AutoModelForImageTextToText` maps it to is built with random weights directly on the device, in
the run's dtype, and gets the stages' trainable parts. Its tokenizer and processor are the tiny
InternVL's (`skywork_rl.miniature.tiny`, trained offline) with the real image layout: `--image-size` tiles
(448 px), up to `--max-patches` per image, and the config's image tokens per tile; the config's
token ids are set to that tokenizer's. Sequence lengths and FLOPs depend on the tokens' count, not
on which tokenizer wrote them.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import torch

ARCH_DIR = Path(__file__).resolve().parent / "arch"


def arch_config(name_or_path: str) -> dict[str, Any]:
    """A config dict from a path, or from a name in benchmarks/arch/ (``internvl3-8b-hf``)."""
    path = Path(name_or_path)
    if not path.is_file():
        path = ARCH_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in ARCH_DIR.glob("*.json"))
        raise SystemExit(f"--arch-config: no file {name_or_path!r} and no such name in {ARCH_DIR} ({known})")
    return json.loads(path.read_text())


def scaled(config: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """`config` with the scale-down options applied; the attention head dim and the query-per-KV-head
    grouping are kept, the MLP width scales with the hidden size."""
    config = copy.deepcopy(config)
    text, vision = config.get("text_config", config), config.get("vision_config")
    if args.layers:
        text["num_hidden_layers"] = args.layers
        text.pop("max_window_layers", None)
        text.pop("layer_types", None)
    if args.hidden:
        head_dim = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
        if args.hidden % head_dim:
            raise SystemExit(f"--hidden {args.hidden}: must be a multiple of the head dim {head_dim}")
        heads = args.hidden // head_dim
        group = text["num_attention_heads"] // text.get("num_key_value_heads", text["num_attention_heads"])
        kv_heads = max(1, heads // group)
        while heads % kv_heads:
            kv_heads -= 1
        width = round(text["intermediate_size"] * args.hidden / text["hidden_size"] / 64) * 64
        text.update(
            hidden_size=args.hidden,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            intermediate_size=max(64, width),
        )
    if args.vocab:
        text["vocab_size"] = args.vocab
    if vision is not None and args.vision_layers:
        vision["num_hidden_layers"] = args.vision_layers
    if vision is not None and args.image_size:
        patch = vision["patch_size"]
        patch = patch[0] if isinstance(patch, list) else patch
        vision["image_size"] = [args.image_size, args.image_size]
        config["image_seq_length"] = round(
            (args.image_size // patch) ** 2 * config.get("downsample_ratio", 1) ** 2
        )
    return config


def internvl_processor(config: dict[str, Any], max_patches: int) -> Any:
    """InternVL's processor over the tiny tokenizer, with the config's tile size and tokens per tile."""
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    from skywork_rl.miniature.tiny import build_tokenizer, chat_template

    size = config["vision_config"]["image_size"]
    size = (
        {"height": size[0], "width": size[1]} if isinstance(size, list) else {"height": size, "width": size}
    )
    return InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, max_patches=max_patches),
        tokenizer=build_tokenizer("internvl"),
        video_processor=InternVLVideoProcessor(size=size),
        image_seq_length=config["image_seq_length"],
        chat_template=chat_template("internvl"),
    )


def random_model(config: dict[str, Any], args: argparse.Namespace) -> tuple[Any, Any]:
    """(model with random weights on the device, processor) for an InternVL-layout config dict."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    if config.get("model_type") != "internvl":
        raise SystemExit(
            f"--arch-config: model_type {config.get('model_type')!r}; random-weight builds have a processor "
            "for InternVL layouts only (use --model for other families)"
        )
    processor = internvl_processor(config, args.max_patches)
    tokenizer = processor.tokenizer
    text = config["text_config"]
    if text["vocab_size"] < len(tokenizer):
        raise SystemExit(f"--vocab {text['vocab_size']}: below the tokenizer's {len(tokenizer)} tokens")
    config["image_token_id"] = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    text.update(ids, pad_token_id=tokenizer.pad_token_id)
    built = AutoConfig.for_model(config.pop("model_type"), **config)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForImageTextToText.from_config(built, dtype=dtype, attn_implementation=args.attn)
    model.generation_config.update(**ids, pad_token_id=tokenizer.pad_token_id)
    return model, processor


def build_model(args: argparse.Namespace) -> tuple[Any, Any, set[str]]:
    """(model, processor, the parts that train) as the stages build them."""
    from skywork_rl.families.parts import ModelArguments, load_from_args, set_trainable

    if args.arch_config:
        model, processor = random_model(scaled(arch_config(args.arch_config), args), args)
        set_trainable(model, args.trainable)
    else:
        model_args = ModelArguments(
            name_or_path=args.model,
            dtype="bfloat16" if args.bf16 else "float32",
            attn_implementation=args.attn,
            trainable=list(args.trainable),
        )
        model, processor = load_from_args(model_args)
    return model, processor, set(args.trainable)
