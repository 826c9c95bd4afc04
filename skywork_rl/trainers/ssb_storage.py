"""How the Selective Sample Buffer keeps a sample on the host: compact, and exact for the loss.

A buffered sample is one row of TRL's generation batch (`grpo_rows.split_rows`): token ids and
masks, advantage, behaviour log-probs, and the image tensors the processor produced. The images
dominate: an InternVL sample with 12 tiles of 448 px is 12 x 3 x 448 x 448 float32 values, 28.9 MB,
so R1V2's `ssb_capacity: 1024` held them at about 29 GB per process (and wrote as much into every
checkpoint). Two savings, neither of which changes what the model computes on a replay:

1. **Rows share equal tensors.** The rollouts of one prompt (one GRPO group) carry the same image
   tensors and prompt ids, and when a group carries signal every rollout of it is buffered (with a
   reward that is not constant over the group, r - mean(r) is non-zero for all of them but ties at
   the mean). A tensor equal to the previous row's is stored once and referenced by both, so the
   image cost per sample falls by up to `num_generations`. `torch.save` keeps the sharing, so
   checkpoints shrink alike.
2. **Pixel values in the vision tower's dtype.** Every vision tower of transformers' VLMs casts its
   pixel values to its own weights' dtype before any arithmetic (InternVL `pixel_values.to(dtype=
   self.dtype)`, Qwen-VL `.type(self.visual.dtype)`, CLIP / SigLIP / Pixtral patch embeddings
   `.to(dtype=target_dtype)`), with round-to-nearest like our cast. So storing bf16 and casting back
   to float32 for the batch hands the model the very values it would have used: bf16 weights halve
   the images, exactly. Float32 weights (CPU runs, autocast with float32 masters) keep float32.

Not chosen: a reference to the dataset row, re-processed on replay. It would store almost nothing,
but it means re-running TRL's multimodal preprocessing outside TRL (chat template with tools and
environments, processor kwargs, InternVL / LFM2 tile recovery, token-type extension) and trusting
it to reproduce the pushed tensors, plus image processing on every replay; (1) and (2) already cut
the images by 2 x num_generations with no code path of TRL copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from skywork_rl.families.parts import UnknownArchitectureError, resolve_parts

# Fields holding pixel values: the only floating tensors narrowed (the model casts them itself).
PIXEL_FIELDS = frozenset({"pixel_values", "pixel_values_videos"})


def vision_dtype(model: torch.nn.Module) -> torch.dtype | None:
    """The one floating dtype of the vision tower's weights, or None (unknown tower, or mixed dtypes)."""
    try:
        names = set(resolve_parts(model)["vision"])
    except UnknownArchitectureError:
        return None
    dtypes = {p.dtype for n, p in model.named_parameters() if n in names and p.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 else None


def _host_copy(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A detached CPU copy in its own storage (a row slice would keep the whole batch's storage alive)."""
    copy = torch.empty(tensor.shape, dtype=dtype or tensor.dtype, device="cpu")
    return copy.copy_(tensor.detach())


def _stored_dtype(key: str, tensor: torch.Tensor, pixel_dtype: torch.dtype | None) -> torch.dtype:
    narrower = (
        pixel_dtype is not None
        and key in PIXEL_FIELDS
        and tensor.is_floating_point()
        and torch.finfo(pixel_dtype).bits < torch.finfo(tensor.dtype).bits
    )
    return pixel_dtype if narrower else tensor.dtype


def compact_rows(
    rows: Sequence[dict[str, Any]], *, pixel_dtype: torch.dtype | None = None
) -> list[dict[str, Any]]:
    """Host copies of `rows` for the buffer: equal tensors of consecutive rows shared, pixels in `pixel_dtype`.

    Only tensors (and lists of tensors) are copied; other values (``num_images``) are kept as they are.
    """
    stored: list[dict[str, Any]] = []
    previous: dict[str, tuple[Any, Any]] = {}  # field -> (the previous row's value, its stored copy)
    for row in rows:
        out: dict[str, Any] = {}
        for key, value in row.items():
            seen = previous.get(key)
            if seen is not None and _equal(seen[0], value):
                out[key] = seen[1]
            elif isinstance(value, torch.Tensor):
                out[key] = _host_copy(value, _stored_dtype(key, value, pixel_dtype))
            elif isinstance(value, list):
                out[key] = [
                    _host_copy(v, _stored_dtype(key, v, pixel_dtype)) if isinstance(v, torch.Tensor) else v
                    for v in value
                ]
            else:
                out[key] = value
            previous[key] = (value, out[key])
        stored.append(out)
    return stored


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


def restore_row(payload: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    """A buffered payload with its pixel values back in the dtype of the same field of `like` (a fresh row)."""
    row = dict(payload)
    for key in PIXEL_FIELDS & row.keys() & like.keys():
        value, reference = row[key], like[key]
        if isinstance(value, torch.Tensor) and isinstance(reference, torch.Tensor):
            row[key] = value.to(reference.dtype)
        elif isinstance(value, list) and isinstance(reference, list) and reference:
            row[key] = [v.to(reference[0].dtype) if isinstance(v, torch.Tensor) else v for v in value]
    return row


def _tensors(value: Any) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def stored_bytes(payloads: Iterable[Any]) -> int:
    """Bytes of the distinct storages behind every tensor of `payloads` (a shared tensor counts once)."""
    storages: dict[int, int] = {}
    for payload in payloads:
        for tensor in _tensors(payload):
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())
