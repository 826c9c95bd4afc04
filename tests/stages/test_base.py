"""The stage runner's provenance: a refused re-run keeps the finished stage finished."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

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


@dataclass
class _Options:
    output_dir: str = ""
    refuse: bool = False


@dataclass
class _Config:
    opts: _Options = field(default_factory=_Options)


class _RefusingStage(Stage):
    name = "refusing"
    config_class = _Config
    output_dir_key = "opts.output_dir"
    input_model_key = None
    input_data_key = None

    def run(self) -> dict[str, float]:
        if self.config.opts.refuse:
            raise StageRefused("output exists; set overwrite")
        return {"rows": 1.0}


def test_refused_rerun_keeps_the_previous_completion_and_provenance(tmp_path):
    out = tmp_path / "out"
    run_stage(_RefusingStage(_Config(_Options(str(out)))))
    before = (out / STAGE_JSON).read_text()
    with pytest.raises(StageRefused):
        run_stage(_RefusingStage(_Config(_Options(str(out), refuse=True))))
    assert (out / COMPLETE_MARKER).exists()
    assert (out / STAGE_JSON).read_text() == before
    assert json.loads(before)["status"] == "complete"


def test_failed_run_clears_the_completion_marker(tmp_path):
    out = tmp_path / "out"
    run_stage(_RefusingStage(_Config(_Options(str(out)))))

    class _Broken(_RefusingStage):
        def run(self) -> dict[str, float]:
            raise RuntimeError("half-written output")

    with pytest.raises(RuntimeError, match="half-written"):
        run_stage(_Broken(_Config(_Options(str(out)))), force=True)
    assert not (out / COMPLETE_MARKER).exists()
    assert json.loads((out / STAGE_JSON).read_text())["status"] == "failed"


def test_finished_stage_refuses_a_rerun_and_changes_nothing(tmp_path):
    out = tmp_path / "out"
    run_stage(_RefusingStage(_Config(_Options(str(out)))))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    with pytest.raises(StageRefused) as info:
        run_stage(_RefusingStage(_Config(_Options(str(out)))))
    message = str(info.value)
    assert str(out) in message and "--force" in message and "opts.output_dir to another folder" in message
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    run_stage(_RefusingStage(_Config(_Options(str(out)))), force=True)
    redone = json.loads((out / STAGE_JSON).read_text())["fingerprint"]["output"]
    assert redone != json.loads(before[STAGE_JSON][0])["fingerprint"]["output"]


def test_force_makes_training_stages_start_fresh_instead_of_resuming():
    assert force_overrides_for(SFTStage) == {"training": {"resume_from_checkpoint": None}}
    assert force_overrides_for(_RefusingStage) == {}


def test_unknown_stage_on_the_cli_is_a_clear_error(capsys):
    assert main(["stage", "no-such-stage"]) == 2
    assert "unknown stage 'no-such-stage'" in capsys.readouterr().err
