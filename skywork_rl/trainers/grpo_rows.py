"""Take TRL's GRPO generation batch apart into one row per sample, and put rows back together.

`GRPOTrainer._generate_and_score_completions` returns one padded dict for the whole generation
batch: prompts left-padded, completions right-padded, token-type ids spanning both, per-sample
tensors (advantages), and image tensors concatenated over all images. To swap single samples (the
Selective Sample Buffer does) each row must carry its own slice of every field, padding removed,
and a mixed list of rows (from batches of different widths) must become a valid batch again.

Images reuse TRL's own `split_pixel_values_by_grid` / `unsplit_pixel_values_by_grid`, so every
layout TRL supports (Qwen grids, InternVL tiles, LLaVA flat, Gemma, LFM2) splits the way TRL's
`_prepare_inputs` already splits it for `steps_per_generation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from trl.trainer.utils import pad, split_pixel_values_by_grid, unsplit_pixel_values_by_grid

PAD_TOKEN = "pad_token"  # stands for the tokenizer's pad id in the padding tables below
# Left-padded, prompt-wide fields and their padding values.
PROMPT_FIELDS: dict[str, Any] = {"prompt_ids": PAD_TOKEN, "prompt_mask": 0}
# Right-padded, completion-wide fields (when their second dim is the completion length).
COMPLETION_FIELDS: dict[str, Any] = {
    "completion_ids": PAD_TOKEN,
    "completion_mask": 0,
    "old_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0,
    "sampling_per_token_logps": 0.0,
    "importance_sampling_ratio": 0.0,
    "tool_mask": 1,  # TRL pads tool_mask with 1; completion_mask masks those positions anyway
}
# Fields spanning prompt + completion (TRL extends token-type ids over the completion with zeros).
SEQUENCE_FIELDS: dict[str, Any] = {"token_type_ids": 0, "mm_token_type_ids": 0}


@dataclass
class SplitBatch:
    """A generation batch as rows plus what is shared by the whole batch.

    `list_fields` are the fields whose per-sample values came from a list (image tensors after
    TRL's split, `num_images`, `num_tiles`); `shared` are batch-level values (`num_items_in_batch`).
    """

    rows: list[dict[str, Any]]
    list_fields: frozenset[str]
    shared: dict[str, Any]

    @property
    def kind(self) -> tuple[str, ...]:
        """The field names of a row: only rows of the same kind can share a batch."""
        return tuple(sorted(self.rows[0])) if self.rows else ()


def is_shared(value: Any) -> bool:
    """Batch-level values (`num_items_in_batch`), as opposed to one entry per sample."""
    return (
        value is None
        or isinstance(value, (int, float))
        or (isinstance(value, torch.Tensor) and value.ndim == 0)
    )


def sample_fields(batch: dict[str, Any]) -> list[str]:
    """Names of the batch's per-sample fields: what a row of `split_rows` holds."""
    return [key for key, value in batch.items() if not is_shared(value)]


def loss_mask(batch: dict[str, Any]) -> torch.Tensor:
    """The completion tokens TRL's loss counts: the completion mask, times the tool mask in multi-turn runs."""
    mask = batch["completion_mask"]
    return mask * batch["tool_mask"] if "tool_mask" in batch else mask


def weighted_token_mask(batch: dict[str, Any]) -> torch.Tensor:
    """The loss tokens TRL's update still weighs: the loss mask less the tokens whose vLLM
    importance-sampling weight TRL has set to zero.

    With ``vllm_importance_sampling_correction`` TRL 1.16 multiplies each token's loss by
    ``importance_sampling_ratio`` ((B, T) in token modes, (B, 1) in sequence modes; both broadcast
    here). The ``sequence_mask`` / ``token_mask`` modes set it to 0 where the sampler's and the
    policy's probabilities drifted past ``vllm_importance_sampling_clip_min/max``: such a sequence (or
    token) is dropped from the update. (``vespo`` reads the same field as a log weight clamped at
    log 1e-8, which leaves a masked sequence a weight of at most 1e-8 ** k: dropped too.)
    """
    mask = loss_mask(batch)
    ratio = batch.get("importance_sampling_ratio")
    return mask if ratio is None else mask * (ratio != 0).to(mask.dtype)


def informative_samples(batch: dict[str, Any], threshold: float) -> torch.Tensor:
    """Samples that carry learning signal: |advantage| above `threshold` and at least one token the
    update still weighs (in the loss mask and not dropped by TRL's importance-sampling mask,
    `weighted_token_mask`)."""
    return (batch["advantages"].abs() > threshold) & (weighted_token_mask(batch).sum(-1) > 0)


def split_rows(batch: dict[str, Any]) -> SplitBatch:
    """One dict per sample holding that sample's slice of every field, padding stripped."""
    batch = split_pixel_values_by_grid(batch)
    prompt_ids, prompt_mask = batch["prompt_ids"], batch["prompt_mask"]
    completion_mask = batch["completion_mask"]
    size, prompt_width, completion_width = prompt_ids.size(0), prompt_ids.size(1), completion_mask.size(1)
    # Prompts are left-padded: the real tokens are the last `prompt_len` columns. Completions keep
    # everything up to their last attended token (a fully masked one, e.g. a masked truncation, keeps
    # its full width so nothing is lost).
    prompt_lens = prompt_mask.sum(-1).tolist()
    # One vectorised pass (a single device sync) instead of a `nonzero()` per row.
    attended = completion_mask.bool()
    last = completion_width - attended.flip(-1).int().argmax(-1)
    completion_lens = torch.where(attended.any(-1), last, torch.full_like(last, completion_width)).tolist()

    rows: list[dict[str, Any]] = [{} for _ in range(size)]
    list_fields, shared = set(), {}
    for key, value in batch.items():
        if is_shared(value):
            shared[key] = value
            continue
        if len(value) != size:
            raise ValueError(
                f"GRPO batch field {key!r}: {len(value)} entries for {size} samples; the Selective Sample "
                "Buffer cannot assign it to samples"
            )
        if isinstance(value, list):
            list_fields.add(key)
        for i, row in enumerate(rows):
            item = value[i]
            start = prompt_width - int(prompt_lens[i])
            if key in PROMPT_FIELDS:
                item = item[start:]
            elif key in COMPLETION_FIELDS and value.ndim >= 2 and value.size(1) == completion_width:
                item = item[: completion_lens[i]]
            elif key in SEQUENCE_FIELDS:
                item = torch.cat(
                    [item[start:prompt_width], item[prompt_width : prompt_width + completion_lens[i]]]
                )
            row[key] = item
    return SplitBatch(rows, frozenset(list_fields), shared)


def collate_rows(
    rows: Sequence[dict[str, Any]],
    template: SplitBatch,
    *,
    pad_token_id: int,
    pad_to_multiple_of: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Rows (possibly from different batches) back into one GRPO batch laid out like `template`'s."""
    if not rows:
        raise ValueError("collate_rows: no rows")
    kind = tuple(sorted(rows[0]))
    for i, row in enumerate(rows):
        if tuple(sorted(row)) != kind:
            raise ValueError(f"collate_rows: row {i} has fields {sorted(row)}, row 0 has {list(kind)}")

    def values(key: str) -> list[Any]:
        return [row[key].to(device) if isinstance(row[key], torch.Tensor) else row[key] for row in rows]

    def padded(key: str, side: str, fill: Any) -> torch.Tensor:
        fill = pad_token_id if fill == PAD_TOKEN else fill
        return pad(values(key), padding_value=fill, padding_side=side, pad_to_multiple_of=pad_to_multiple_of)

    batch: dict[str, Any] = {}
    for key in kind:
        if key in PROMPT_FIELDS:
            batch[key] = padded(key, "left", PROMPT_FIELDS[key])
        elif key in COMPLETION_FIELDS and _is_per_token(rows, key):
            batch[key] = padded(key, "right", COMPLETION_FIELDS[key])
        elif key in template.list_fields:
            batch[key] = values(key)
        elif key not in SEQUENCE_FIELDS:
            items = values(key)
            batch[key] = torch.stack(items) if items[0].ndim == 0 else pad(items, padding_value=0)
    prompt_width = batch["prompt_ids"].size(1)
    completion_width = batch["completion_ids"].size(1)
    for key in SEQUENCE_FIELDS.keys() & set(kind):
        fill = SEQUENCE_FIELDS[key]
        prompt_parts, completion_parts = [], []
        for row, value in zip(rows, values(key), strict=True):
            cut = len(row["prompt_ids"])
            prompt_parts.append(_pad_to(value[:cut], prompt_width, "left", fill))
            completion_parts.append(_pad_to(value[cut:], completion_width, "right", fill))
        batch[key] = torch.cat([torch.stack(prompt_parts), torch.stack(completion_parts)], dim=1)
    batch.update(template.shared)
    return unsplit_pixel_values_by_grid(batch)


def _is_per_token(rows: Sequence[dict[str, Any]], key: str) -> bool:
    """Whether `key` is laid out per completion token in these rows (sequence-level IS ratios are not)."""
    return all(len(row[key]) == len(row["completion_ids"]) for row in rows)


def _pad_to(tensor: torch.Tensor, width: int, side: str, fill: Any) -> torch.Tensor:
    missing = width - tensor.size(0)
    if missing < 0:
        raise ValueError(f"collate_rows: a row is {tensor.size(0)} wide, the batch only {width}")
    filler = tensor.new_full((missing, *tensor.shape[1:]), fill)
    return torch.cat([filler, tensor] if side == "left" else [tensor, filler])
