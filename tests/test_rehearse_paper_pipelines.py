"""The three paper pipelines rehearse end to end (`skywork-rl run PIPELINE --rehearse`): every stage of the
real plan runs on the CPU with tiny stand-ins, and each stage.json says what stood in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _rehearse(name: str, root: Path, monkeypatch) -> dict:
    from skywork_rl.runner.pipeline import run_pipeline

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(REPO)  # the pipelines name repository-relative paths
    return run_pipeline(
        REPO / "recipes" / name / "pipeline.yaml", rehearse=True, output_root=str(root), quiet=True
    )


def _assert_every_stage_ran_with_its_record(report: dict, name: str) -> dict[str, dict]:
    from skywork_rl.runner.plan import plan_pipeline

    _, real = plan_pipeline(REPO / "recipes" / name / "pipeline.yaml")
    assert [s["id"] for s in report["stages"]] == [s.id for s in real]  # the exact graph
    assert all(s["status"] == "ran" for s in report["stages"]), report["stages"]
    records = {}
    for stage in report["stages"]:
        record = json.loads((Path(stage["output_dir"]) / "stage.json").read_text())
        assert record["status"] == "complete"
        assert "substitutions" in record["rehearsal"], stage["id"]
        records[stage["id"]] = record
    return records


@pytest.mark.slow
def test_r1v3_pipeline_rehearses_end_to_end(tmp_path, monkeypatch):
    records = _assert_every_stage_ran_with_its_record(
        _rehearse("skywork-r1v3", tmp_path, monkeypatch), "skywork-r1v3"
    )
    subs = records["cold-start"]["rehearsal"]["substitutions"]
    assert subs["model.name_or_path"][0] == "Skywork/Skywork-R1V2-38B"  # the teacher stood in for
    assert subs["model.backend"] == ["vllm", "transformers"]
    grpo = records["grpo-4k"]["rehearsal"]["substitutions"]
    assert grpo["rewards.verifier_model"][0] == "Qwen/Qwen2.5-7B-Instruct"
    assert grpo["launch.num_processes"] == [8, 2]
    assert records["grpo-4k"]["resolved_config"]["training"]["num_generations"] == 32  # the paper's
    assert records["sft"]["fingerprint"]["processes"] == 2


@pytest.mark.slow
def test_r1v3_8b_pipeline_rehearses_end_to_end(tmp_path, monkeypatch):
    records = _assert_every_stage_ran_with_its_record(
        _rehearse("skywork-r1v3-8b", tmp_path, monkeypatch), "skywork-r1v3-8b"
    )
    assert (
        records["sft"]["rehearsal"]["substitutions"]["model.name_or_path"][0] == "OpenGVLab/InternVL3-8B-hf"
    )


@pytest.mark.slow
def test_r1v2_pipeline_rehearses_end_to_end(tmp_path, monkeypatch):
    records = _assert_every_stage_ran_with_its_record(
        _rehearse("skywork-r1v2", tmp_path, monkeypatch), "skywork-r1v2"
    )
    pairs = records["pairs"]["rehearsal"]["substitutions"]
    assert pairs["reward_model.name_or_path"][0] == "Skywork/Skywork-VL-Reward-7B"
    assert records["pairs"]["resolved_config"]["pairs"]["min_margin"] == 15  # the paper's margin, kept
    assert records["pairs"]["metrics"]["rows"] > 0
    assert records["grpo"]["resolved_config"]["training"]["ssb_enabled"] is True
