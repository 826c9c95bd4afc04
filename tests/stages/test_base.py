"""The stage runner's provenance: a refused re-run keeps the finished stage finished."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from helpers import OneRowStage, one_row_stage

from skywork_rl.cli import main
from skywork_rl.stages.base import (
    COMPLETE_MARKER,
    STAGE_JSON,
    Stage,
    StageRefused,
    force_overrides_for,
    run_stage,
)
from skywork_rl.stages.sft import SFTStage


def test_refused_rerun_keeps_the_previous_completion_and_provenance(tmp_path):
    out = tmp_path / "out"
    run_stage(one_row_stage(out))
    before = (out / STAGE_JSON).read_text()
    with pytest.raises(StageRefused):
        run_stage(one_row_stage(out, refuse=True))
    assert (out / COMPLETE_MARKER).exists()
    assert (out / STAGE_JSON).read_text() == before
    assert json.loads(before)["status"] == "complete"


def test_failed_run_clears_the_completion_marker(tmp_path):
    out = tmp_path / "out"
    run_stage(one_row_stage(out))

    class _Broken(OneRowStage):
        def run(self) -> dict[str, float]:
            raise RuntimeError("half-written output")

    with pytest.raises(RuntimeError, match="half-written"):
        run_stage(one_row_stage(out, stage_class=_Broken), force=True)
    assert not (out / COMPLETE_MARKER).exists()
    assert json.loads((out / STAGE_JSON).read_text())["status"] == "failed"


def test_finished_stage_refuses_a_rerun_and_changes_nothing(tmp_path):
    out = tmp_path / "out"
    run_stage(one_row_stage(out))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    with pytest.raises(StageRefused) as info:
        run_stage(one_row_stage(out))
    message = str(info.value)
    assert str(out) in message and "--force" in message and "opts.output_dir to another folder" in message
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    run_stage(one_row_stage(out), force=True)
    redone = json.loads((out / STAGE_JSON).read_text())["fingerprint"]["output"]
    assert redone != json.loads(before[STAGE_JSON][0])["fingerprint"]["output"]


def test_force_makes_training_stages_start_fresh_instead_of_resuming():
    assert force_overrides_for(SFTStage) == {"training": {"resume_from_checkpoint": None}}
    assert force_overrides_for(OneRowStage) == {}


def test_unknown_stage_on_the_cli_is_a_clear_error(capsys):
    assert main(["stage", "no-such-stage"]) == 2
    assert "unknown stage 'no-such-stage'" in capsys.readouterr().err


@dataclass
class _Training:
    output_dir: str = ""
    steps: int = 1


@dataclass
class _TrainingConfig:
    training: _Training = field(default_factory=_Training)


class _SavingStage(Stage):
    """Saves a 'model' into its folder; records what the folder held while it ran."""

    name = "saving"
    config_class = _TrainingConfig
    input_model_key = None
    input_data_key = None
    seen: list[str] = []

    def run(self) -> dict[str, float]:
        out = self.output_dir
        type(self).seen = sorted(p.name for p in out.iterdir())
        (out / "model.safetensors").write_text(f"weights of {self.config.training.steps} steps")
        if self.config.training.steps < 0:
            raise RuntimeError("training diverged")
        return {"steps": float(self.config.training.steps)}


def test_a_fresh_rerun_sets_the_previous_model_aside_until_it_completes(tmp_path):
    from skywork_rl.stages.base import PREVIOUS_RUN

    out = tmp_path / "out"
    run_stage(_SavingStage(_TrainingConfig(_Training(str(out), 2))))
    (out / "checkpoint-2").mkdir()
    run_stage(_SavingStage(_TrainingConfig(_Training(str(out), 1))), force=True)
    # while the new run trained, no previous model was where a loader looks
    assert "model.safetensors" not in _SavingStage.seen and "checkpoint-2" not in _SavingStage.seen
    assert PREVIOUS_RUN in _SavingStage.seen
    assert (out / "model.safetensors").read_text() == "weights of 1 steps"
    assert not (out / PREVIOUS_RUN).exists()  # removed once the new run completed
    # a fresh run that fails keeps the previous model aside, named, and says where
    with pytest.raises(RuntimeError, match="diverged"):
        run_stage(_SavingStage(_TrainingConfig(_Training(str(out), -1))), force=True)
    assert (out / PREVIOUS_RUN / "model.safetensors").read_text() == "weights of 1 steps"
    record = json.loads((out / STAGE_JSON).read_text())
    assert record["status"] == "failed" and record["previous_run_set_aside"] == str(out / PREVIOUS_RUN)
