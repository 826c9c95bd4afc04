"""`skywork-rl run PIPELINE --rehearse`: the paper pipelines' exact graph with tiny stand-ins, every recipe
value the paper's except the sizes and sources `skywork_rl/runner/rehearsal.py` names."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from skywork_rl.runner.rehearsal import (
    PROCESSES,
    REHEARSAL_ENV,
    SIZE_RULE,
    differing_keys,
    rehearse_plan,
)

REPO = Path(__file__).resolve().parents[1]
PAPER_PIPELINES = ("skywork-r1v3", "skywork-r1v3-8b", "skywork-r1v2")
# Recipe values a rehearsal must never touch (the recipe's algorithm), by key name.
ALGORITHMIC = {
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "beta",
    "epsilon",
    "epsilon_high",
    "loss_type",
    "loss_weights",
    "num_generations",
    "num_iterations",
    "temperature",
    "top_p",
    "reward_funcs",
    "reward_weights",
    "trainable",
    "min_margin",
    "criterion",
    "low",
    "high",
    "keep_per_prompt",
    "proportions",
    "seed",
    "mask_truncated_completions",
}


def _planned(pipeline: Path, root: Path):
    from skywork_rl.runner.plan import plan_pipeline, validate

    _, stages = plan_pipeline(pipeline, str(root))
    for stage in stages:
        validate(stage)
    return stages


@pytest.fixture(scope="module")
def rehearsed_plans(tmp_path_factory):
    """Each paper pipeline planned as is and as rehearsed (stand-ins written once, shared)."""
    from skywork_rl.runner.plan import validate

    root = tmp_path_factory.mktemp("rehearsal-plans")
    plans = {}
    for name in PAPER_PIPELINES:
        real = _planned(REPO / "recipes" / name / "pipeline.yaml", root / name)
        rehearsed = copy.deepcopy(real)
        rehearse_plan(rehearsed, root / name)
        for stage in rehearsed:
            validate(stage)  # the rehearsed configs parse with each stage's own parser
        plans[name] = (real, rehearsed)
    return plans


@pytest.mark.parametrize("name", PAPER_PIPELINES)
def test_rehearsal_differs_from_the_paper_pipeline_only_in_sizes_and_sources(rehearsed_plans, name):
    real, rehearsed = rehearsed_plans[name]
    assert [s.id for s in rehearsed] == [s.id for s in real]  # the exact graph: every stage, same order
    for before, after in zip(real, rehearsed, strict=True):
        subs = after.rehearsal["substitutions"]
        changed = differing_keys(before.config, after.config)
        for key in changed:
            leaf = key.rsplit(".", 1)[-1]
            assert leaf in SIZE_RULE or key in subs, f"{name}/{after.id}: {key} changed outside the rule"
            assert leaf not in ALGORITHMIC, f"{name}/{after.id}: algorithmic value {key} changed"
        # the record is the diff: every changed key is recorded with its real and stand-in value
        recorded = {k: v for k, v in subs.items() if not k.startswith("launch.")}
        assert set(recorded) == set(changed)
        assert all(recorded[k] == list(changed[k]) for k in changed)
        # the same launch config (so the same ZeRO stage), 2 fp32 processes where the stage is distributed
        assert after.accelerate_config == before.accelerate_config
        if after.launcher == "accelerate":
            assert after.num_processes == PROCESSES
            assert subs["launch.num_processes"][1] == PROCESSES
            assert after.command()[after.command().index("--mixed_precision") + 1] == "no"


@pytest.mark.parametrize("name", PAPER_PIPELINES)
def test_rehearsal_replaces_every_external_model_and_dataset(rehearsed_plans, name):
    """No hub id is left in a rehearsed config: every model and dataset path is local."""
    _, rehearsed = rehearsed_plans[name]
    for stage in rehearsed:
        text = json.dumps(stage.config)
        for hub in (
            "OpenGVLab/",
            "Skywork/",
            "Qwen/",
            "FanqingM/",
            "derek-thomas/",
            "allenai/",
            "MathV360K/",
        ):
            assert hub not in text.replace("_standins", ""), f"{name}/{stage.id} still names {hub}"


def test_rehearsed_grpo_keeps_the_papers_episode_shape(rehearsed_plans):
    """32 samples per prompt and one gradient step per generation (R1V3) survive the size rule."""
    real, rehearsed = rehearsed_plans["skywork-r1v3"]
    grpo = next(s for s in rehearsed if s.id == "grpo-4k")
    training = grpo.config["training"]
    assert training["num_generations"] == 32
    per_generation = training["per_device_train_batch_size"] * PROCESSES * training["steps_per_generation"]
    assert per_generation % 32 == 0
    assert training["gradient_accumulation_steps"] == training["steps_per_generation"]
    assert training["use_vllm"] is False


def test_stage_json_records_the_rehearsal(tmp_path, monkeypatch):
    """A stage run under a rehearsal copies the runner's record into its stage.json."""
    from helpers import one_row_stage

    from skywork_rl.stages.base import run_stage

    record = {"substitutions": {"model.name_or_path": ["OpenGVLab/InternVL3-38B-hf", "/tiny"]}}
    (tmp_path / "rehearsal.json").write_text(json.dumps(record))
    monkeypatch.setenv(REHEARSAL_ENV, str(tmp_path / "rehearsal.json"))
    run_stage(one_row_stage(tmp_path / "out"))
    saved = json.loads((tmp_path / "out" / "stage.json").read_text())
    assert saved["rehearsal"] == record
    monkeypatch.delenv(REHEARSAL_ENV)
    run_stage(one_row_stage(tmp_path / "out2"))
    assert "rehearsal" not in json.loads((tmp_path / "out2" / "stage.json").read_text())
