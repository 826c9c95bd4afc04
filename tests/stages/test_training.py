"""Resume picks the newest checkpoint that finished saving; parameter counts survive ZeRO-3."""

from __future__ import annotations

import pytest
import torch

from skywork_rl.stages.training import last_complete_checkpoint, resolve_resume
from skywork_rl.trainers.params import count_trainable, numel_of


def _checkpoint(root, step, complete=True):
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_resume_skips_a_checkpoint_cut_off_mid_save(tmp_path):
    _checkpoint(tmp_path, 10)
    good = _checkpoint(tmp_path, 20)
    _checkpoint(tmp_path, 30, complete=False)  # killed while saving
    (tmp_path / "checkpoint-final").mkdir()  # not a step folder
    assert last_complete_checkpoint(tmp_path) == str(good)
    assert resolve_resume(tmp_path, "auto") == str(good)


def test_auto_resume_starts_fresh_without_checkpoints_and_explicit_true_is_an_error(tmp_path):
    assert resolve_resume(tmp_path, "auto") is None
    assert resolve_resume(tmp_path, None) is None
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        resolve_resume(tmp_path, True)


def test_parameter_counts_use_zero3_full_sizes():
    model = torch.nn.Linear(4, 4)
    model.weight.ds_numel = 1000  # ZeRO-3 leaves an empty local shard and records the real size here
    model.weight.data = torch.empty(0)
    assert numel_of(model.weight) == 1000
    assert count_trainable(model) == {"trainable_params": 1004, "total_params": 1004}
