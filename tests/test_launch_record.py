"""stage.json's "launch" record: how the stage process was really launched, read from the process.

The 2-process DeepSpeed ZeRO-3 run's record (config file, ZeRO stage from the accelerator, the process
count given on the command line rather than the config's) is checked in tests/test_two_nodes.py.
"""

from __future__ import annotations

import json

from helpers import one_row_stage

from skywork_rl.stages.base import STAGE_JSON, run_stage
from skywork_rl.stages.launch import ACCELERATE_CONFIG_ENV

# What `accelerate launch` / torchrun set in the processes they start; none is set in a plain process.
LAUNCHER_ENV = (
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "GROUP_WORLD_SIZE",
    "GROUP_RANK",
    "TORCHELASTIC_RUN_ID",
    "ACCELERATE_MIXED_PRECISION",
    "ACCELERATE_USE_DEEPSPEED",
    "ACCELERATE_DEEPSPEED_ZERO_STAGE",
    ACCELERATE_CONFIG_ENV,
)


def test_plain_one_process_run_records_its_launch_as_one_process_without_config_or_zero(
    tmp_path, monkeypatch
):
    for key in LAUNCHER_ENV:
        monkeypatch.delenv(key, raising=False)
    out = tmp_path / "out"
    run_stage(one_row_stage(out))
    record = json.loads((out / STAGE_JSON).read_text())
    assert record["launch"] == {
        "accelerate_config": None,
        "zero_stage": None,
        "processes": 1,
        "machines": 1,
        "machine_rank": 0,
    }


def test_launch_record_names_the_config_file_skywork_rl_stage_resolved(tmp_path, monkeypatch):
    for key in LAUNCHER_ENV:
        monkeypatch.delenv(key, raising=False)
    config = tmp_path / "zero3.yaml"
    # What `launch_stage` exports to the processes it launches (their parent's argv names only "zero3").
    monkeypatch.setenv(ACCELERATE_CONFIG_ENV, str(config))
    monkeypatch.setenv("WORLD_SIZE", "1")
    out = tmp_path / "out"
    run_stage(one_row_stage(out))
    assert json.loads((out / STAGE_JSON).read_text())["launch"]["accelerate_config"] == str(config)
