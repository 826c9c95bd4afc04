"""Exact resume for our TRL trainers: a checkpoint's weights really load, and the state beyond them survives.

transformers 5 writes checkpoints in the checkpoint's original key layout: `save_pretrained` reverts the
weight conversions `from_pretrained` applied (the live `model.language_model.*` is written
`language_model.model.*`). `Trainer._load_from_checkpoint` reads those files with a plain
`load_state_dict(strict=False)`, so on resume every tensor is "missing", transformers only logs a warning
and training goes on from the *input* weights (transformers issues #43701, #48805).

`ExactResumeMixin` (mixed in before the TRL class: ``class X(ExactResumeMixin, SFTTrainer)``) overrides
that loader and `_load_best_model`: the key mapping is the one `from_pretrained` uses
(`get_model_conversion_mapping`), applied by the helper transformers itself uses to load a state dict
into a live model (`_apply_weight_conversions_to_state_dict`, the ZeRO-3 loading path), and the tensors
are copied into the live parameters in place, so frozen parts stay frozen and the optimizer keeps its
parameters. A key the checkpoint lacks or the model does not have is a `ResumeError`, never a warning.

It also says what a complete checkpoint is. `Trainer._save_checkpoint` writes weights, optimizer, RNG,
then (process 0) `trainer_state.json`. Our trainers' own state (the Selective Sample Buffer, GRPO's
buffered generation batch) is written per process right after the RNG state, and all processes meet
at a barrier before `trainer_state.json` is written; so a folder with `trainer_state.json` holds every
file of `checkpoint_files()`, which is what `skywork_rl.stages.training.last_complete_checkpoint`
checks. What checkpoints cannot hold is refused rather than resumed wrongly: a `sync_ref_model`
reference (TRL keeps it in memory only).
"""

from __future__ import annotations

import json
import os
from dataclasses import field
from typing import Any

import torch

from skywork_rl.errors import SkyworkError
from skywork_rl.records import TRAINER_STATE_FILE

_SAFE_WEIGHTS, _SAFE_INDEX = "model.safetensors", "model.safetensors.index.json"
_TORCH_WEIGHTS, _TORCH_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"


class ResumeError(SkyworkError, RuntimeError):
    """A checkpoint cannot be resumed exactly (weights that do not match the model, a missing state file)."""


def weight_files(folder: str) -> list[str]:
    """The checkpoint's weight files: the shards named by an index, or the single weights file."""
    for index_name in (_SAFE_INDEX, _TORCH_INDEX):
        index = os.path.join(folder, index_name)
        if os.path.isfile(index):
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            return [os.path.join(folder, shard) for shard in shards]
    for name in (_SAFE_WEIGHTS, _TORCH_WEIGHTS):
        if os.path.isfile(os.path.join(folder, name)):
            return [os.path.join(folder, name)]
    raise ResumeError(
        f"checkpoint {folder}: no {_SAFE_WEIGHTS} (or index / {_TORCH_WEIGHTS}) to resume the weights from"
    )


@torch.no_grad()
def load_checkpoint_weights(model: Any, folder: str) -> None:
    """Copy a checkpoint's weights into `model` with `from_pretrained`'s key conversion; every key must match.

    Tensors are copied into the existing parameters (`load_state_dict`), keeping their identity and
    `requires_grad`. Raises `ResumeError` naming the missing and unexpected keys.
    """
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key
    from transformers.integrations.deepspeed import _apply_weight_conversions_to_state_dict
    from transformers.modeling_utils import load_state_dict

    mapping = get_model_conversion_mapping(model)
    renamings = [m for m in mapping if isinstance(m, WeightRenaming)]
    converters = [m for m in mapping if isinstance(m, WeightConverter)]
    expected = model.state_dict()
    files = weight_files(folder)
    # Renamings act key by key, so shards load one at a time (as transformers' own sharded loader does);
    # a converter may fuse tensors from several shards, so then the whole checkpoint is read at once.
    groups = [files] if converters else [[f] for f in files]
    missing, unexpected = set(expected), []
    for group in groups:
        state_dict: dict[str, torch.Tensor] = {}
        for path in group:
            state_dict.update(load_state_dict(path))
        for key in state_dict:  # the very test the conversion helper uses to keep a key
            renamed, _ = rename_source_key(key, renamings, converters, model.base_model_prefix, expected)
            if renamed not in expected:
                unexpected.append(key)
        for converted in _apply_weight_conversions_to_state_dict(model, state_dict, mapping):
            model.load_state_dict(converted, strict=False)
            missing -= set(converted)
    missing -= _tied_or_ignored(model, expected, missing)
    if missing or unexpected:
        raise ResumeError(
            f"checkpoint {folder} does not match {type(model).__name__}: missing {sorted(missing)[:8]} "
            f"({len(missing)} in all), unexpected {sorted(unexpected)[:8]} ({len(unexpected)} in all). Resume it "
            "with the model it was trained from (model.name_or_path), or set training.resume_from_checkpoint: "
            "null to start fresh"
        )


def _tied_or_ignored(model: Any, expected: dict[str, torch.Tensor], missing: set[str]) -> set[str]:
    """Missing keys that need no tensor: tied to a loaded one (safetensors stores one of them) or never saved."""
    fine = set(getattr(model, "_keys_to_ignore_on_save", None) or ()) & missing
    for target, source in (getattr(model, "all_tied_weights_keys", None) or {}).items():
        shares_storage = expected[target].data_ptr() == expected[source].data_ptr()
        if target in missing and source not in missing and shares_storage:
            fine.add(target)
    return fine


class ExactResumeMixin:
    """Weights load with `from_pretrained`'s key conversion, strictly; checkpoints are complete or not resumed.

    Subclasses with state of their own name its per-process files in `resume_state_files` (with
    ``{rank}``) and write / read them in `save_resume_state` / `load_resume_state`.
    """

    args: Any
    model: Any
    state: Any
    accelerator: Any

    def resume_state_files(self) -> list[str]:
        """This trainer's own per-process checkpoint files, as ``name_{rank}.pt`` patterns."""
        return []

    def save_resume_state(self, folder: str) -> None:
        """Write this process's `resume_state_files` into checkpoint `folder` (every process calls it)."""

    def load_resume_state(self, folder: str) -> None:
        """Restore what `save_resume_state` wrote (every process, after optimizer and scheduler)."""

    def checkpoint_files(self) -> list[str]:
        """Every file a checkpoint of this run holds once it is complete (weights and optimizer aside)."""
        # `save_only_model` checkpoints lack all but the weights: never complete, so never resumed (transformers
        # would resume them with a fresh optimizer).
        world = max(int(self.args.world_size), 1)
        files = [TRAINER_STATE_FILE]
        files += ["rng_state.pth"] if world == 1 else [f"rng_state_{rank}.pth" for rank in range(world)]
        for pattern in self.resume_state_files():
            files += list(dict.fromkeys(pattern.format(rank=rank) for rank in range(world)))
        return files

    def _plain_model(self, model: Any) -> bool:
        """A model whose weights live whole in this process (not FSDP / SageMaker MP sharded, not a PEFT adapter)."""
        from transformers.trainer import _is_peft_model
        from transformers.utils import is_sagemaker_mp_enabled

        return not (self.is_fsdp_enabled or is_sagemaker_mp_enabled() or _is_peft_model(model))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        target = self.model if model is None else model
        if not self._plain_model(target):
            # FSDP / PEFT checkpoints are written with the live keys; `_issue_warnings_after_load` is strict.
            super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]
            return
        load_checkpoint_weights(target, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        if self.is_deepspeed_enabled or not self._plain_model(self.model):
            super()._load_best_model()  # type: ignore[misc]
            return
        load_checkpoint_weights(self.model, best)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        missing, unexpected = list(load_result.missing_keys), list(load_result.unexpected_keys)
        ignorable = set(getattr(self.model, "_keys_to_ignore_on_save", None) or ())
        if (missing and set(missing) != ignorable) or unexpected:
            raise ResumeError(
                f"loading a checkpoint into {type(self.model).__name__}: missing keys {missing[:8]}, unexpected "
                f"keys {unexpected[:8]}; training would continue from weights that are not the checkpoint's"
            )
        super()._issue_warnings_after_load(load_result)  # type: ignore[misc]

    def _save_rng_state(self, output_dir: str) -> None:
        super()._save_rng_state(output_dir)  # type: ignore[misc]
        self.save_resume_state(output_dir)
        # Process 0 writes trainer_state.json next, the mark of a complete checkpoint: every process's
        # files must be on disk before it.
        self.accelerator.wait_for_everyone()

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is not None and getattr(self.args, "sync_ref_model", False):
            raise ResumeError(
                f"checkpoint {checkpoint}: training.sync_ref_model moves the reference model, and checkpoints do "
                "not hold it (TRL's SyncRefModelCallback keeps it in memory): a resumed run would compare against "
                "the input model instead. Set training.resume_from_checkpoint: null to train again from the start"
            )
        super()._load_optimizer_and_scheduler(checkpoint)  # type: ignore[misc]
        if checkpoint is None:
            return
        absent = [f for f in self.checkpoint_files() if not os.path.isfile(os.path.join(checkpoint, f))]
        if absent:
            raise ResumeError(
                f"checkpoint {checkpoint} lacks {absent}: it was cut off while saving, saved with "
                "save_only_model, or saved by a run with other settings (number of processes, ssb_enabled). "
                "Resume from a complete checkpoint with the same settings, or set "
                "training.resume_from_checkpoint: null to start fresh"
            )
        self.load_resume_state(checkpoint)


def resume_from_checkpoint_field() -> Any:
    """The `training.resume_from_checkpoint` field of our TRL config subclasses: ``auto`` by default (see
    `resolve_resume`), where TRL's default (None) would start a killed pipeline's stage over."""
    return field(
        default="auto",
        metadata={"help": "auto (newest checkpoint-* in output_dir if any), a checkpoint folder, or null."},
    )
