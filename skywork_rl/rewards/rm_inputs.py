"""What a reward model reads: (prompt, completion) rendered as one conversation, cut to a max length.

The score is read at the last token, so an over-long input loses tokens from the left: the start
of the prompt (system text, chat header) goes first. A VLM's image tokens are never cut (their
count must match the image features), so a row that cannot fit without cutting one cannot be scored
at that length: `truncate_left` reports it instead of corrupting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from skywork_rl.rewards.completions import completion_text


def as_parts(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with string content turned into text parts (VLM chat templates expect parts)."""
    return [
        {**m, "content": [{"type": "text", "text": m["content"]}]} if isinstance(m.get("content"), str) else m
        for m in messages
    ]


def prompt_messages(prompt: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def text_only(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages with image parts dropped, for a text RM."""
    flat = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            content = "\n".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
        flat.append({"role": message["role"], "content": content})
    return flat


def render_conversation(processor: Any, kind: str, prompt: Any, completion: Any) -> str:
    """The text the RM scores: the chat template over prompt + answer (a VLM keeps its image parts)."""
    answer = completion_text(completion)
    if kind == "vlm":
        messages = as_parts(prompt_messages(prompt) + [{"role": "assistant", "content": answer}])
        return processor.apply_chat_template(messages, tokenize=False)
    if getattr(processor, "chat_template", None):
        messages = text_only(prompt_messages(prompt)) + [{"role": "assistant", "content": answer}]
        return processor.apply_chat_template(messages, tokenize=False)
    prompt_text = prompt if isinstance(prompt, str) else text_only(prompt)[-1]["content"]
    return prompt_text + answer


def multimodal_token_ids(config: Any, processor: Any) -> set[int]:
    """Token ids that must never be cut: image/video placeholders and the markers around them."""
    ids: set[int] = set()
    for name, value in config.to_dict().items():
        if (
            isinstance(value, int)
            and name.endswith(("token_id", "token_index"))
            and any(word in name for word in ("image", "vision", "video", "boi", "eoi"))
        ):
            ids.add(value)
    for name in ("image_token_id", "video_token_id"):
        value = getattr(processor, name, None)
        if isinstance(value, int):
            ids.add(value)
    return ids


@dataclass
class Truncation:
    """Rows cut to fit (``truncated``) and rows that cannot fit without cutting a protected token."""

    truncated: list[int]
    too_long: list[int]


def plan_truncation(batch: dict[str, Any], max_length: int, protected: set[int]) -> Truncation:
    """Which rows of a right-padded batch exceed ``max_length``, and which of those cannot be cut."""
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    truncated, too_long = [], []
    for row, length in enumerate(lengths):
        cut = length - max_length
        if cut <= 0:
            continue
        head = batch["input_ids"][row, :cut].tolist()
        (too_long if protected.intersection(head) else truncated).append(row)
    return Truncation(truncated, too_long)


def truncate_left(batch: dict[str, Any], max_length: int, pad_token_id: int) -> dict[str, Any]:
    """Cut every row of a right-padded batch to its last ``max_length`` tokens, padding on the right.

    Every per-token tensor (those shaped like ``input_ids``) is cut the same way; others (pixel
    values, image grids) are left as they are. Call `plan_truncation` first: this cuts blindly.
    """
    ids = batch["input_ids"]
    lengths = batch["attention_mask"].sum(dim=1)
    if int(lengths.max()) <= max_length:
        return batch
    kept = lengths.clamp(max=max_length)
    width = int(kept.max())
    out = dict(batch)
    for key, value in batch.items():
        if not (isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[:2] == ids.shape):
            continue
        fill = pad_token_id if key == "input_ids" else 0
        cut = value.new_full((ids.shape[0], width, *value.shape[2:]), fill)
        for row in range(ids.shape[0]):
            start, n = int(lengths[row] - kept[row]), int(kept[row])
            cut[row, :n] = value[row, start : start + n]
        out[key] = cut
    return out
