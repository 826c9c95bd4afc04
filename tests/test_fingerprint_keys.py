"""Which config keys the fingerprint hashes: every key but the secrets, named exactly.

TRL's token-valued keys (`eos_token`, `pad_token`, ...) change what SFT, MPO and connector stages
make, so changing one re-runs the stage; `hub_token` is a secret, neither hashed nor recorded.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import trl
import yaml

from skywork_rl.records import fingerprint
from skywork_rl.runner.plan import plan_pipeline, set_dotted, validate
from skywork_rl.runner.state import decide
from skywork_rl.stages.base import COMPLETE_MARKER, STAGE_JSON

TRAINING_STAGES = ("sft", "mpo", "connector", "grpo")


def _trl_token_keys() -> set[str]:
    """Every field of TRL's config dataclasses whose name ends in `_token`, secrets left out."""
    keys = set()
    for name in dir(trl):
        if not name.endswith("Config"):
            continue
        try:
            cls = getattr(trl, name)
        except Exception:  # an optional backend TRL cannot import here
            continue
        if dataclasses.is_dataclass(cls):
            keys |= {f.name for f in dataclasses.fields(cls) if f.name.endswith("_token")}
    return keys - fingerprint.SECRET_LEAVES


def _plan(tmp_path: Path, stage: str, training: dict) -> object:
    from skywork_rl.stages.registry import get_stage_class

    cls = get_stage_class(stage)
    config: dict = {"training": dict(training)} if training else {}
    set_dotted(config, cls.input_model_key, "org/model")
    if cls.input_data_key:
        set_dotted(config, cls.input_data_key, "org/data")
    path = tmp_path / "pipe.yaml"
    spec = {
        "name": "t",
        "output_root": str(tmp_path / "out"),
        "stages": [{"id": stage, "stage": stage, "config": config}],
    }
    path.write_text(yaml.safe_dump(spec))
    _, (planned,) = plan_pipeline(path)
    validate(planned)
    return planned


def _finish(planned) -> None:
    """Record `planned` as a finished run, as `run_stage` would."""
    planned.output_dir.mkdir(parents=True)
    fp = {
        "config": fingerprint.config_hash(planned.stage_class, planned.resolved),
        "inputs": fingerprint.stage_inputs(planned.input_model, planned.input_data),
        "processes": 1,
        "output": "x",
    }
    cls = planned.stage_class
    record = {
        "stage_class": f"{cls.__module__}:{cls.__qualname__}",
        "fingerprint": fp,
        "resolved_config": fingerprint.redacted(planned.resolved),
        "status": "complete",
    }
    (planned.output_dir / STAGE_JSON).write_text(json.dumps(record))
    (planned.output_dir / COMPLETE_MARKER).write_text("done\n")


def test_trl_has_token_valued_keys_to_check():
    assert {"eos_token", "pad_token"} <= _trl_token_keys()


@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_changing_any_trl_token_key_reruns_the_stage(tmp_path, stage):
    first = _plan(tmp_path, stage, {})
    keys = sorted(_trl_token_keys() & set(first.resolved["training"]))
    if stage != "grpo":  # GRPOConfig has none of them; the others have eos_token and/or pad_token
        assert keys, f"{stage}: no TRL token key in its training config"
    _finish(first)
    assert [d.action for d in decide([first], {stage})] == ["skip"]
    for key in keys:
        changed = _plan(tmp_path, stage, {key: "<|changed|>"})
        (decision,) = decide([changed], {stage})
        assert decision.action == "run", f"{stage}: training.{key} changed but the stage is {decision.action}"
        assert f"training.{key}" in decision.reason


@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_hub_token_is_neither_hashed_nor_recorded(tmp_path, stage):
    first = _plan(tmp_path, stage, {})
    _finish(first)
    changed = _plan(tmp_path, stage, {"hub_token": "hf_secret"})
    assert [d.action for d in decide([changed], {stage})] == ["skip"]
    assert "hf_secret" not in json.dumps(fingerprint.redacted(changed.resolved))


def test_config_hash_is_by_value_so_500_and_500_point_0_hash_alike():
    from skywork_rl.stages.registry import get_stage_class

    cls = get_stage_class("sft")
    as_int = {"training": {"save_steps": 500, "eval_delay": 0, "learning_rate": 1e-5, "bf16": True}}
    as_float = {"training": {"save_steps": 500.0, "eval_delay": 0.0, "learning_rate": 1e-5, "bf16": True}}
    assert fingerprint.config_hash(cls, as_int) == fingerprint.config_hash(cls, as_float)
    changed = {"training": {**as_int["training"], "save_steps": 500.5}}
    assert fingerprint.config_hash(cls, changed) != fingerprint.config_hash(cls, as_int)


@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_a_stage_finished_by_its_own_process_is_skipped_by_the_runner(tmp_path, stage):
    """The fingerprint `run_stage` records comes from the stage's process parsing the ``recipe.yaml``
    the runner wrote; the runner's comes from its in-memory parse of the pipeline. They must agree,
    or every training stage re-runs on every ``run`` (jsonargparse gives TrainingArguments'
    ``eval_delay: float = 0`` default as 0 from a file and 0.0 from data)."""
    from skywork_rl.stages.base import stage_fingerprint
    from skywork_rl.stages.parsing import load_stage

    planned = _plan(tmp_path, stage, {"bf16": False, "use_cpu": True})  # instantiable here
    planned.output_dir.mkdir(parents=True)
    planned.recipe_file.write_text(yaml.safe_dump(planned.config, sort_keys=False))  # as the runner does
    in_process = load_stage(planned.stage_class, ["--config", str(planned.recipe_file)], "recipe.yaml")
    fp, resolved = stage_fingerprint(in_process)
    cls = planned.stage_class
    record = {
        "stage_class": f"{cls.__module__}:{cls.__qualname__}",
        "fingerprint": {**fp, "output": "x"},
        "resolved_config": resolved,
        "status": "complete",
    }
    (planned.output_dir / STAGE_JSON).write_text(json.dumps(record))
    (planned.output_dir / COMPLETE_MARKER).write_text("done\n")
    (decision,) = decide([planned], {stage})
    assert (decision.action, decision.reason) == ("skip", "unchanged")
