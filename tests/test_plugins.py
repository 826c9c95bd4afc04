"""Plugins: data_prep and eval register their stages, scorers and commands; so can a user's package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skywork_rl.plugins import DuplicateEntryError, Plugin, PluginError, load_plugin
from skywork_rl.scorers import UnknownBenchmarkError, get_benchmark_scorer
from skywork_rl.stages.registry import register_stage

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cli(args: list[str], *extra_path: Path) -> subprocess.CompletedProcess[str]:
    """`skywork-rl ARGS` in a fresh process, this checkout first on the path (plus `extra_path`)."""
    path = os.pathsep.join([*(str(p) for p in extra_path), str(REPO_ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "skywork_rl.cli", *args],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _install(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    """Write the metadata `pip install` would leave for `dist` declaring `entry_points`."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[skywork_rl.plugins]\n{lines}")


def test_the_checkout_registers_data_stages_and_eval_commands_without_the_core_naming_them() -> None:
    stages = _cli(["stages"])
    assert stages.returncode == 0, stages.stderr
    listed = dict(line.split() for line in stages.stdout.splitlines())
    assert listed["clean"] == "data_prep.stages:CleanStage"
    assert listed["preference-pairs"] == "data_prep.preference_stage:PreferencePairsStage"
    assert listed["sft"] == "skywork_rl.stages.sft:SFTStage"
    usage = _cli(["--help"])
    assert "  eval " in usage.stdout and "  select " in usage.stdout


def test_an_installed_package_adds_a_stage_and_a_command_through_its_entry_point(tmp_path: Path) -> None:
    (tmp_path / "demo_plugin.py").write_text(
        "from skywork_rl.plugins import register_command\n"
        "from skywork_rl.stages.registry import register_stage\n"
        "def register():\n"
        "    register_stage('echo', 'demo_plugin:EchoStage')\n"
        "    register_command('hello', 'demo_plugin:hello', 'say hello')\n"
        "def hello(argv):\n"
        "    print('hello from the plugin', *argv)\n"
        "    return 0\n"
    )
    _install(tmp_path, "demo-plugin", {"demo": "demo_plugin:register"})
    stages = _cli(["stages"], tmp_path)
    assert "echo                 demo_plugin:EchoStage" in stages.stdout, stages.stderr
    assert "clean" in stages.stdout  # the checkout's own plugins still load beside it
    hello = _cli(["hello", "world"], tmp_path)
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from the plugin world"


def test_stale_installed_metadata_of_this_project_gives_way_to_the_checkouts_pyproject(
    tmp_path: Path,
) -> None:
    # an editable install made before a plugin was renamed: its metadata still declares the old one
    _install(tmp_path, "skywork-rl", {"data_prep": "data_prep.old_plugin:register"})
    stages = _cli(["stages"], tmp_path)
    assert stages.returncode == 0, stages.stderr
    assert "data_prep.stages:CleanStage" in stages.stdout


def test_a_plugin_that_cannot_load_is_an_error_naming_it_and_the_fix() -> None:
    ghost = Plugin("ghost", "no_such_module:register", "the installed package ghost-plugin")
    with pytest.raises(
        PluginError, match=r"plugin 'ghost' \(no_such_module:register.*ghost-plugin.*pip install"
    ):
        load_plugin(ghost)


def test_two_packages_claiming_one_stage_name_is_an_error() -> None:
    with pytest.raises(DuplicateEntryError, match="stage .sft. is registered twice"):
        register_stage("sft", "someone_else.stages:SFTStage")
    register_stage("sft", "skywork_rl.stages.sft:SFTStage")  # the same target again: a no-op


def test_benchmark_scorers_come_from_the_eval_plugin() -> None:
    from eval.benchmarks import MMMU

    assert get_benchmark_scorer("mmmu") is MMMU
    with pytest.raises(
        UnknownBenchmarkError, match="unknown benchmark 'mmlu'; registered benchmarks: .*mmmu"
    ):
        get_benchmark_scorer("mmlu")
