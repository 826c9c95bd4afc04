"""The command line as users meet it: TRL's precedence and help, one-line errors, a finished stage
refused by hand and redone with --force, and `stage` launching accelerate itself."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from skywork_rl.cli import main
from skywork_rl.stages.base import COMPLETE_MARKER, parse_stage_config
from skywork_rl.stages.registry import get_stage_class

REPO = Path(__file__).resolve().parents[1]
TINY_SFT = REPO / "recipes" / "tiny" / "sft.yaml"


def _squash(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    "argv",
    [
        ["--training.max_steps", "3", "--config", str(TINY_SFT)],
        ["--config", str(TINY_SFT), "--training.max_steps", "3"],
        ["--training.max_steps=3", f"--config={TINY_SFT}"],
    ],
    ids=["override-first", "config-first", "equals-forms"],
)
def test_command_line_beats_recipe_whatever_the_order(argv):
    config = parse_stage_config(get_stage_class("sft"), argv)
    assert config.training.max_steps == 3  # the recipe says 200
    assert config.training.learning_rate == 3.0e-3  # the recipe still beats the default (2e-5)


def test_stage_help_shows_trl_and_our_option_documentation(capsys):
    from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

    assert main(["stage", "grpo", "--help"]) == 0
    shown = _squash(capsys.readouterr().out)
    fields = {f.name: f for f in dataclasses.fields(SkyworkGRPOConfig)}
    trl_help = fields["learning_rate"].metadata["help"]  # TRL's GRPOConfig documents it
    assert trl_help == "The initial learning rate for AdamW."
    assert f"--training.learning_rate LEARNING_RATE {trl_help}" in shown
    assert f"--training.ssb_capacity SSB_CAPACITY {_squash(fields['ssb_capacity'].metadata['help'])}" in shown
    assert "--num_processes N" in shown and "--force" in shown


def test_errors_print_one_line_and_the_traceback_only_with_debug(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKYWORK_RL_DEBUG", "0")  # restored afterwards, also when --debug sets it
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: pipeline: no such file {tmp_path / 'missing.yaml'}\n"
    assert main(["run", str(tmp_path / "missing.yaml"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith(
        f"no such file {tmp_path / 'missing.yaml'}\n"
    )


def test_missing_model_path_says_it_is_resolved_from_the_current_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKYWORK_RL_DEBUG", "0")  # restored afterwards, also when --debug sets it
    monkeypatch.chdir(tmp_path)
    argv = [
        "--model.name_or_path",
        "ckpt/tiny/sft",
        "--training.output_dir",
        "o",
        "--training.use_cpu",
        "true",
    ]
    code = main(["stage", "sft", *argv, "--training.bf16", "false"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: model.name_or_path: no such path 'ckpt/tiny/sft'")
    assert f"resolved from the current directory, {tmp_path}" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_finished_stage_refuses_by_hand_and_force_retrains(
    tmp_path, tiny_internvl, synthetic_dataset_dir, capsys, monkeypatch
):
    monkeypatch.setenv("SKYWORK_RL_DEBUG", "0")
    out = tmp_path / "sft"
    argv = [
        "stage",
        "sft",
        "--config",
        str(TINY_SFT),
        "--training.max_steps",
        "1",
        "--training.save_steps",
        "1",
    ]
    argv += ["--model.name_or_path", str(tiny_internvl), "--data.train", str(synthetic_dataset_dir)]
    argv += ["--training.output_dir", str(out), "--training.report_to", "[]"]
    assert main(argv) == 0
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {out} holds a finished sft stage (completed {(out / COMPLETE_MARKER).read_text().strip()}): "
        "pass --force to redo it from scratch, or set training.output_dir to another folder\n"
    )
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before
    assert main([*argv, "--force"]) == 0
    record = json.loads((out / "stage.json").read_text())
    assert (
        record["status"] == "complete" and record["metrics"]["global_step"] == 1
    )  # trained again, not resumed
    assert (out / "model.safetensors").stat().st_mtime_ns > before[out / "model.safetensors"][1]


_RANK_STAGE = textwrap.dedent(
    """
    import os
    from dataclasses import dataclass, field
    from pathlib import Path

    from skywork_rl.stages.base import Stage


    @dataclass
    class Options:
        output_dir: str = ""


    @dataclass
    class Config:
        ranks: Options = field(default_factory=Options)


    class RankStage(Stage):
        name = "ranks"
        config_class = Config
        output_dir_key = "ranks.output_dir"
        input_model_key = None
        input_data_key = None

        def run(self):
            rank, world = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
            Path(self.config.ranks.output_dir, f"rank{rank}-of-{world}").write_text(str(os.getpid()))
            return {"world_size": float(world)}
    """
)


@pytest.mark.slow
def test_stage_launches_accelerate_itself_with_num_processes(tmp_path):
    (tmp_path / "rank_stage.py").write_text(_RANK_STAGE)
    out = tmp_path / "out"
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({"ranks": {"output_dir": str(out)}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), "OMP_NUM_THREADS": "1"}
    for var in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID"):
        env.pop(var, None)
    cmd = [
        sys.executable,
        "-m",
        "skywork_rl.cli",
        "stage",
        "rank_stage:RankStage",
        "--config",
        str(tmp_path / "recipe.yaml"),
    ]
    cmd += [
        "--num_processes",
        "2",
        "--accelerate_config",
        str(REPO / "recipes" / "accelerate" / "cpu_ddp.yaml"),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # two processes, each ran the stage once (no second launch from inside the launched ones)
    assert sorted(p.name for p in out.glob("rank*")) == ["rank0-of-2", "rank1-of-2"]
    record = json.loads((out / "stage.json").read_text())
    assert record["metrics"] == {"world_size": 2.0} and "--num_processes" not in record["argv"]
    # under a launcher, launch options are an error rather than a launch from every process
    again = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", *cmd[1:], "--force"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert again.returncode != 0 and "already runs under accelerate launch" in again.stderr
