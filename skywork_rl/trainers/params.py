"""Parameter counts that hold under DeepSpeed ZeRO-3, where a partitioned parameter's local tensor is empty."""

from __future__ import annotations

from typing import Any


def numel_of(param: Any) -> int:
    # ZeRO-3 partitions parameters at load time: the local tensor is empty, `ds_numel` is the real size.
    return int(getattr(param, "ds_numel", param.numel()))


def count_trainable(model: Any) -> dict[str, int]:
    trainable = sum(numel_of(p) for p in model.parameters() if p.requires_grad)
    total = sum(numel_of(p) for p in model.parameters())
    return {"trainable_params": trainable, "total_params": total}
