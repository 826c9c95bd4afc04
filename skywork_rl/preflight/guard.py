"""The preflight `skywork-rl stage` and `skywork-rl run` run before training, wherever GPUs are visible.

It is `skywork-rl preflight` itself (`preflight_recipe` / `preflight_pipeline`), judged on this
machine's GPUs (`layout.detect_hardware`) and the launch that is about to start: the
accelerate config and `--num_processes` of `stage`, each stage's launch in `run`, or, inside
`accelerate launch`, that launch's WORLD_SIZE and DeepSpeed settings. A plan it refuses never starts:
the error names the stage, the component, the number and the key to change; `--skip-preflight` starts
it anyway. Rows it cannot judge (a model whose config.json is not available offline, e.g. a hub id not
downloaded yet) are shown as unchecked and do not stop the run: `skywork-rl preflight
--model-config-dir` judges them before a run. Without GPUs (CPU runs, tests) nothing is checked.

`skywork-rl run` checks the stages it will start once, before the first, and tells the stage
processes it starts ($SKYWORK_RL_PREFLIGHT_CHECKED) so they do not check again; so does `stage` for
the processes its own `accelerate launch` starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from skywork_rl.preflight.command import preflight_pipeline, preflight_recipe
from skywork_rl.preflight.layout import hardware_from_flags, launched_layout
from skywork_rl.preflight.report import PreflightRefused, PreflightReport, refusal
from skywork_rl.stages.parsing import RecipeError

SKIP_FLAG = "--skip-preflight"
CHECKED_ENV = "SKYWORK_RL_PREFLIGHT_CHECKED"


def _main_process() -> bool:
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) in ("", "0")


def enforce(report: PreflightReport) -> None:
    """Show the report (once per launch) and raise what it refuses."""
    if _main_process():  # the whole table when it refuses; else what to know (`skywork-rl preflight`: all)
        print("\npreflight on this machine (--skip-preflight starts a refused plan anyway):", flush=True)
        print(report.render() if report.refused else report.render_brief(), flush=True)
    if report.refused:
        raise PreflightRefused(
            "preflight refused: "
            + "; ".join(refusal(r) for r in report.refused)
            + f". Nothing was started; {SKIP_FLAG} starts it anyway"
        )


def guard_stage(stage: str, config: dict[str, Any], recipe: str | None, launch_args: list[str]) -> None:
    """Before `skywork-rl stage` builds or launches anything: refuse a stage that cannot fit here."""
    if os.environ.get(CHECKED_ENV):
        return
    hardware = _this_machine()
    if hardware is None:
        return
    accelerate_config, num_processes = _launch(launch_args)
    report = preflight_recipe(
        recipe if recipe and Path(recipe).is_file() else stage,
        stage,
        config=config,
        accelerate_config=accelerate_config,
        num_processes=num_processes,
        hardware=hardware,
        launched=None if launch_args else launched_layout(),
    )
    enforce(report)


def guard_pipeline(path: str | Path, spec: dict[str, Any], stages: list[Any], stage_ids: set[str]) -> None:
    """Before `skywork-rl run` starts its first stage: refuse when a stage it will start cannot fit."""
    hardware = _this_machine()
    if hardware is None or not stage_ids:
        return
    enforce(preflight_pipeline(path, planned=(spec, stages), hardware=hardware, stage_ids=stage_ids))


def _this_machine() -> Any:
    """This machine's GPUs, RAM and free disk, as `skywork-rl preflight` without --gpus sees them."""
    return hardware_from_flags(None, None)


def _launch(launch_args: list[str]) -> tuple[Path | None, int | None]:
    """(accelerate config file, --num_processes) of `stage`'s own launch options."""
    config = processes = None
    if "--accelerate_config" in launch_args:
        from trl.cli.accelerate_config import resolve_accelerate_config_argument

        try:
            resolved = resolve_accelerate_config_argument(list(launch_args))
        except ValueError as exc:
            raise RecipeError(f"--accelerate_config: {exc}") from exc
        config = Path(resolved[resolved.index("--config_file") + 1])
    if "--num_processes" in launch_args:
        processes = int(launch_args[launch_args.index("--num_processes") + 1])
    return config, processes
