"""The canonical row schema that every stage reads and every data_prep step writes.

It lives in the core because the training stages check their inputs against it; `data_prep` and
`eval` build rows with it (the core never imports them).

One schema for all stages means a dataset made by any curation step feeds SFT, MPO, GRPO, the
connector stage and eval without a conversion step. It is TRL's conversational format with images
(what `SFTTrainer`, `DPOTrainer` and `GRPOTrainer` accept as is) plus the columns that make an
item verifiable and traceable:

- ``prompt``: list of chat messages; user content is a list of parts,
  ``[{"type": "image"}, {"type": "text", "text": "..."}]`` (one ``{"type": "image"}`` per image,
  in order).
- ``images``: list of PIL images (``datasets.Image`` feature), the images the prompt refers to.
- ``solution``: the gold final answer as text (``"72"``, ``"\\frac{1}{2}"``, ``"B"``).
- ``source``: which dataset / generator the row came from (a domain key for balanced mixing).
- ``id``: a stable id, unique within ``source``.

Optional, by stage:
- ``completion``: assistant messages (the reasoning trace) for SFT rows.
- ``chosen`` / ``rejected``: assistant messages for MPO preference rows.
- ``choices``: list of option texts for multiple-choice items (letter ``A`` is ``choices[0]``).
- ``pass_rate``: the fraction of sampled rollouts that verified, written by the difficulty filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from skywork_rl.errors import DataError

REQUIRED_COLUMNS: tuple[str, ...] = ("prompt", "images", "solution", "source", "id")
SFT_COLUMNS: tuple[str, ...] = (*REQUIRED_COLUMNS, "completion")
PREFERENCE_COLUMNS: tuple[str, ...] = (*REQUIRED_COLUMNS, "chosen", "rejected")


class SchemaError(DataError):
    """A dataset does not have the columns a stage needs (a `DataError`: the CLI prints it in one line)."""


def user_prompt(text: str, num_images: int = 1, system: str | None = None) -> list[dict[str, Any]]:
    """Build a canonical ``prompt``: optional system message, then one user turn with the images first."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    parts: list[dict[str, Any]] = [{"type": "image"} for _ in range(num_images)]
    parts.append({"type": "text", "text": text})
    messages.append({"role": "user", "content": parts})
    return messages


def assistant_message(text: str) -> list[dict[str, Any]]:
    """Build a canonical ``completion`` / ``chosen`` / ``rejected`` value."""
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def prompt_text(prompt: Sequence[dict[str, Any]]) -> str:
    """The concatenated text of a canonical prompt's user turns (for dedup, decontamination, logs)."""
    texts: list[str] = []
    for message in prompt:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text" and part.get("text"):
                texts.append(part["text"])
    return "\n".join(texts)


def require_columns(column_names: Iterable[str], needed: Iterable[str], where: str) -> None:
    """Raise a `SchemaError` that names the dataset and each missing column."""
    have = set(column_names)
    missing = [c for c in needed if c not in have]
    if missing:
        raise SchemaError(
            f"{where}: missing column(s) {missing}; have {sorted(have)}. "
            "Map the source's columns onto the canonical schema (see skywork_rl/data/schema.py) "
            "with a column mapping in the recipe."
        )
