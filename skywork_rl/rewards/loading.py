"""Finding, loading and placing the models a reward runs inside training (reward models, judges).

TRL's GRPOTrainer loads a reward model given by name in its constructor and then places it: a
DeepSpeed engine (`trl.models.prepare_deepspeed`) under DeepSpeed, ``accelerator.prepare_model(...,
evaluation_mode=True)`` (the process's device, no DDP wrapper) otherwise. Our rewards load on their
first call instead, when the trainer's DeepSpeed config is already global, so three things need care:

- **Hub ids are folders.** The reward head of a VLM reward model is a tensor in the checkpoint's
  files (or ``reward_head.safetensors`` beside them), so the checkpoint must be a folder to search.
  A hub id is resolved to its snapshot folder in the local HF cache (`resolve_checkpoint`; offline
  first, a download only when the cache lacks it and the hub may be used) and every file is read
  from that folder.
- **Outside ``zero.Init``.** Under ZeRO-3 transformers wraps every ``from_pretrained`` in
  ``deepspeed.zero.Init``, which partitions the weights as they load; run without an engine, such a
  model sees 0-element parameters and fails with shape errors. Rewards load inside
  `outside_zero3_init` and are placed afterwards.
- **Placed as TRL places its reward models** (`place_for_inference`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from skywork_rl.errors import SkyworkError

logger = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def hub_cache_dir() -> str:
    """The HF hub cache, read from ``HF_HUB_CACHE`` now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    return constants.HF_HUB_OFFLINE or (flag or "").strip().lower() in {"1", "true", "yes", "on"}


def _has_weights(folder: Path) -> bool:
    return any(p.name.endswith(_WEIGHT_SUFFIXES) for p in folder.iterdir())


def resolve_checkpoint(name_or_path: str, *, key: str, revision: str | None = None) -> Path:
    """The local folder of a checkpoint given as a folder or a hub id.

    A hub id is looked up in the local HF cache first (``HF_HUB_CACHE``); a cached snapshot without
    weight files (only a config was fetched) does not count. When the cache lacks it, it is
    downloaded, unless the hub is off (``HF_HUB_OFFLINE``): then the error names ``key``, the cache
    searched and the fix.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or name_or_path.startswith((".", "~")) or path.exists():
        raise SkyworkError(f"{key}: no checkpoint folder at '{name_or_path}'; give a folder or a hub id")
    cache = hub_cache_dir()
    try:
        folder = Path(
            snapshot_download(name_or_path, revision=revision, cache_dir=cache, local_files_only=True)
        )
        if _has_weights(folder):
            return folder
    except LocalEntryNotFoundError:
        pass
    except HFValidationError as error:
        raise SkyworkError(
            f"{key}: '{name_or_path}' is neither a folder nor a hub id ({error}); give a checkpoint "
            "folder or an id like 'org/name'"
        ) from None
    if _offline():
        raise SkyworkError(
            f"{key}: '{name_or_path}' is not a folder and its weights are not in the HF cache ({cache}), "
            "and HF_HUB_OFFLINE is set. Download it where the hub is reachable (`hf download "
            f"{name_or_path}`, with the same HF_HUB_CACHE) or give its folder."
        )
    try:
        return Path(snapshot_download(name_or_path, revision=revision, cache_dir=cache))
    except Exception as error:  # noqa: BLE001 - any download failure gets the same actionable message
        raise SkyworkError(
            f"{key}: could not download '{name_or_path}' into {cache} ({type(error).__name__}: {error}); "
            "check the id and your access to it, or give a local folder"
        ) from error


@contextmanager
def outside_zero3_init() -> Iterator[None]:
    """Load models here without ``deepspeed.zero.Init``, even while a ZeRO-3 trainer is configured.

    transformers decides by the process-wide ``HfDeepSpeedConfig`` weak reference that the trainer's
    arguments registered; it is cleared for the block and put back after (the only writer is the
    trainer's constructor, which does not run during a reward call).
    """
    from transformers.integrations import deepspeed as hf_deepspeed

    saved = hf_deepspeed._hf_deepspeed_config_weak_ref  # read only: transformers has no public getter
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def deepspeed_stage() -> int | None:
    """The ZeRO stage of the running accelerate/DeepSpeed setup, or None without DeepSpeed."""
    from accelerate.state import AcceleratorState, is_initialized
    from accelerate.utils import DistributedType

    if not is_initialized():
        return None
    state = AcceleratorState()
    if state.distributed_type != DistributedType.DEEPSPEED or state.deepspeed_plugin is None:
        return None
    return int(state.deepspeed_plugin.deepspeed_config["zero_optimization"]["stage"])


def place_for_inference(model: Any, device: Any, *, shardable: bool) -> tuple[Any, bool]:
    """Place a model loaded outside ``zero.Init`` as TRL's GRPOTrainer places reward models.

    Under DeepSpeed: TRL's own `prepare_deepspeed` (an inference engine; ZeRO-3 partitions the
    weights over the ranks, lower stages keep a full copy). Otherwise: the process's ``device``, eval
    mode (what ``accelerator.prepare_model(model, evaluation_mode=True)`` does besides autocast; the
    model runs in the dtype it was loaded in).

    ``shardable``: the caller runs the same forward passes on every rank in the same order (ZeRO-3
    gathers each module's weights from all ranks as it runs). A model that cannot promise it (a VLM
    skipping its vision tower on text-only rows, a judge generating answers of different lengths)
    keeps a full copy on its device instead.

    Returns the placed model and whether it is sharded across ranks.
    """
    stage = deepspeed_stage()
    if stage is not None and (shardable or stage < 3):
        from accelerate.state import AcceleratorState
        from trl.models import prepare_deepspeed

        # prepare_deepspeed reads only `accelerator.state.deepspeed_plugin`: the trainer's state is
        # the process-wide AcceleratorState, so no second Accelerator is built.
        engine = prepare_deepspeed(model, SimpleNamespace(state=AcceleratorState()))
        return engine, stage == 3
    if stage == 3:
        logger.info(
            "ZeRO-3: %s keeps a full copy on %s (its forwards differ between ranks)",
            type(model).__name__,
            device,
        )
    return model.to(device).eval(), False
