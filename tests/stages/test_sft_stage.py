"""Cold-start SFT stage on the tiny VLM with images."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import CPU_TRAINING, stage_argv
from safetensors.torch import load_file

from skywork_rl.cli import main
from skywork_rl.stages.base import COMPLETE_MARKER, parse_stage_config, run_stage
from skywork_rl.stages.sft import SFTStage


def _argv(model, data, out, steps=24, extra=()):
    training = dict(max_steps=steps, per_device_train_batch_size=4, learning_rate="3e-3")
    training.update(lr_scheduler_type="constant", logging_steps=4, save_strategy="no")
    return stage_argv(model, data, out, *extra, **training, **CPU_TRAINING)


@pytest.mark.slow
def test_sft_loss_decreases_and_vision_stays_frozen(tiny_internvl, synthetic_dataset_dir, tmp_path):
    out = tmp_path / "sft"
    config = parse_stage_config(SFTStage, _argv(tiny_internvl, synthetic_dataset_dir, out))
    metrics = run_stage(SFTStage(config))
    assert metrics["final_loss"] < 0.7 * metrics["first_loss"], metrics
    before = load_file(str(tiny_internvl / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    vision = [k for k in before if "vision_tower." in k]
    connector = [k for k in before if "multi_modal_projector." in k]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)
    assert any(not torch.equal(before[k], after[k]) for k in connector)
    record = json.loads((out / "stage.json").read_text())
    assert record["status"] == "complete" and record["input_model"] == str(tiny_internvl)
    assert (out / COMPLETE_MARKER).exists()
    assert (out / "processor_config.json").exists()  # the output is a loadable checkpoint for the next stage


def test_sft_trains_only_the_connector_when_asked(tiny_internvl, synthetic_dataset_dir, tmp_path):
    out = tmp_path / "sft-conn"
    argv = _argv(tiny_internvl, synthetic_dataset_dir, out, steps=2, extra=["--model.trainable=[connector]"])
    run_stage(SFTStage(parse_stage_config(SFTStage, argv)))
    before = load_file(str(tiny_internvl / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("multi_modal_projector." in k for k in changed)


def test_sft_missing_column_error_names_dataset_and_column(tiny_internvl, tmp_path):
    from datasets import Dataset

    data = tmp_path / "bad"
    Dataset.from_list([{"prompt": [], "solution": "1"}]).save_to_disk(str(data))
    argv = _argv(tiny_internvl, data, tmp_path / "o", steps=1)
    try:
        run_stage(SFTStage(parse_stage_config(SFTStage, argv)))
    except ValueError as exc:
        assert "data.train" in str(exc) and "'completion'" in str(exc)
    else:
        raise AssertionError("a dataset without completions must be rejected")
    assert json.loads((tmp_path / "o" / "stage.json").read_text())["status"] == "failed"


def test_stage_cli_help_lists_trl_options(capsys):
    assert main(["stage", "sft", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--training.learning_rate" in out and "--model.trainable" in out


def test_stage_cli_reports_bad_recipe_with_exit_code_2(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("training:\n  max_steps: many\n")
    assert main(["stage", "sft", "--config", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert str(recipe) in err and "training.max_steps" in err


def test_top_level_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "skywork_rl.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("stage", "run", "make-tiny-model", "eval", "select"):
        assert command in out
