"""The pipeline's plan checks `tiny.arch` and each training stage's model family before any stage starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skywork_rl.families.capabilities import FamilyCapabilityError
from skywork_rl.runner.pipeline import run_pipeline
from skywork_rl.stages.base import RecipeError

REPO = Path(__file__).resolve().parents[1]


def _pipeline(tmp_path: Path, stages: list[dict]) -> Path:
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "output_root": str(tmp_path / "out"), "stages": stages}))
    return path


def _sft(**training) -> dict:
    config = {"data": {"train": "org/data"}, **({"training": training} if training else {})}
    return {"id": "sft", "stage": "sft", "config": config}


def test_unknown_tiny_arch_is_refused_before_any_stage_starts(tmp_path):
    path = _pipeline(
        tmp_path,
        [
            {"id": "data", "stage": "demo-data"},
            {"id": "model", "stage": "tiny-model", "config": {"tiny": {"arch": "nope"}}},
        ],
    )
    with pytest.raises(
        RecipeError, match=r"stage model \(tiny-model\): tiny.arch 'nope' is not a tiny model family"
    ):
        run_pipeline(path, quiet=True)
    assert not (tmp_path / "out").exists()  # the demo-data stage before it did not run either


def test_model_family_without_part_patterns_is_refused_before_any_stage_starts(tmp_path):
    model = tmp_path / "ckpt"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "mystery_vlm"}))
    sft = _sft()
    sft["config"]["model"] = {"name_or_path": str(model)}
    path = _pipeline(tmp_path, [{"id": "data", "stage": "demo-data"}, sft])
    with pytest.raises(
        RecipeError, match=r"stage sft \(sft\): .* is a 'mystery_vlm' model, which has no part patterns"
    ):
        run_pipeline(path, quiet=True)
    assert not (tmp_path / "out").exists()


def test_family_that_cannot_do_what_the_recipe_asks_is_refused_before_any_stage_starts(tmp_path):
    path = _pipeline(
        tmp_path,
        [
            {"id": "model", "stage": "tiny-model", "config": {"tiny": {"arch": "paligemma"}}},
            _sft(assistant_only_loss=True),
        ],
    )
    with pytest.raises(
        FamilyCapabilityError, match=r"stage sft \(sft\): paligemma models cannot mark the assistant"
    ):
        run_pipeline(path, quiet=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_unknown_arch_in_a_pipeline_is_one_error_line(tmp_path):
    path = _pipeline(tmp_path, [{"id": "model", "stage": "tiny-model", "config": {"tiny": {"arch": "nope"}}}])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SKYWORK_RL_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "skywork_rl.cli", "run", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[
        -3000:
    ]
    assert "tiny.arch 'nope'" in errors[0] and "choose from" in errors[0]
