"""Tiny, real Hugging Face VLM checkpoints built from config, for tests and the offline demo.

No hub download is possible on CI, so the project makes its own checkpoints, one per family the
part registry names (`skywork_rl.families`): random weights in the real model class that
`AutoModelForImageTextToText` maps the family's `model_type` to, a BPE tokenizer trained locally
with `tokenizers` holding the family's special tokens, a chat template in the family's own turn
format that renders images, keeps `<think>...</think>` reasoning and marks the assistant's turn
with `{% generation %}`, and the family's real processor. The folder is a normal checkpoint:
`AutoModelForImageTextToText` / `AutoProcessor` load it by path through exactly the code that loads
a hub model.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from skywork_rl.families.registry import (
    FAMILIES,
    IMAGE_SIZE,
    PATCH_SIZE,
    REASONING_TOKENS,
    VOCAB_SIZE,
    TinyFamily,
    Tokens,
)
from skywork_rl.records.atomic import write_atomic

TINY_ARCHS = tuple(FAMILIES)
__all__ = ["IMAGE_SIZE", "PATCH_SIZE", "TINY_ARCHS", "VOCAB_SIZE", "build_tokenizer", "make_tiny_model"]


def family(arch: str) -> TinyFamily:
    """The tiny recipe of `arch` (a `config.model_type`), or a ValueError listing the known ones."""
    if arch not in FAMILIES:
        raise ValueError(f"unknown tiny arch {arch!r}; choose from {list(TINY_ARCHS)}")
    return FAMILIES[arch]


def chat_template(arch: str) -> str:
    """The family's turn format with image parts and `{% generation %}` markers (TRL's `assistant_only_loss`)."""
    return family(arch).chat_template


def _training_corpus() -> Iterator[str]:
    """Text shaped like what the tiny model will see: questions, reasoning, boxed answers, digits."""
    from skywork_rl.miniature.synthetic import corpus_for_tokenizer  # defers PIL

    yield from corpus_for_tokenizer()


def build_tokenizer(arch: str) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer locally (no download) and wrap it as a HF fast tokenizer."""
    recipe = family(arch)
    chat = recipe.chat
    specials = list(dict.fromkeys((*chat.specials, *recipe.image_tokens)))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(REASONING_TOKENS),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=chat.bos,
        eos_token=chat.eos,
        pad_token=chat.pad,
        unk_token=None,
        model_max_length=4096,
        padding_side="left",
        # The processors read their tokens from these attributes (`tokenizer.image_token`, ...).
        extra_special_tokens=dict(recipe.named_tokens),
    )
    fast.add_tokens(list(REASONING_TOKENS))
    fast.chat_template = recipe.chat_template
    return fast


def tiny_processor(arch: str, tokenizer: PreTrainedTokenizerFast | None = None) -> Any:
    """The family's real processor around the tiny tokenizer (some processors add tokens to it)."""
    recipe = family(arch)
    return recipe.processor(
        tokenizer if tokenizer is not None else build_tokenizer(arch), recipe.chat_template
    )


def make_tiny_model(arch: str = "internvl", out_dir: str | Path = "tiny-model", seed: int = 0) -> Path:
    """Write a complete tiny checkpoint folder for `arch` and return its path."""
    from transformers import AutoModelForImageTextToText

    recipe = family(arch)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    processor = tiny_processor(arch)
    tokenizer = processor.tokenizer
    model = AutoModelForImageTextToText.from_config(recipe.config(Tokens(tokenizer)))
    if recipe.finish is not None:
        recipe.finish(model)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    write_atomic(out / "tiny_model.json", json.dumps({"arch": arch, "seed": seed, "made_by": "skywork-rl"}))
    return out


def main(argv: list[str] | None = None) -> int:
    """`skywork-rl make-tiny-model`: write a tiny random-weight VLM checkpoint folder."""
    listing = "\n".join(f"  {arch:<16} {recipe.description}" for arch, recipe in FAMILIES.items())
    parser = argparse.ArgumentParser(
        prog="skywork-rl make-tiny-model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write a tiny random-weight VLM checkpoint (real model class, locally trained tokenizer, "
            "the family's chat template with images and <think>, its real processor) that loads by path "
            "like a hub model. Used by the tests and the offline demo pipeline."
        ),
        epilog="families (--arch):\n" + listing,
    )
    parser.add_argument("--arch", default="internvl", choices=TINY_ARCHS, help="family (default: internvl)")
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
