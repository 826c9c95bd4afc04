"""`skywork-rl stage NAME --num_processes N --accelerate_config C`: accelerate launched for you.

This follows TRL's own command line (`trl sft ... --num_processes 8 --accelerate_config zero3`,
trl/cli/commands/training.py): the options accelerate understands are split off, `--accelerate_config`
is resolved with TRL's `resolve_accelerate_config_argument` (a file, or a config TRL ships by name),
and accelerate's `launch_command` starts the processes in-process. Each process runs
`python -m skywork_rl.cli stage NAME ...` without the launch options, so it runs the stage itself.
`accelerate launch -m skywork_rl.cli stage ...` keeps working: a stage started by a launcher that is
given launch options again is an error, never a second launch.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

from skywork_rl.stages.parsing import RecipeError

# Options of `skywork-rl stage` that accelerate consumes (TRL accepts the same two spellings).
LAUNCH_OPTIONS = ("--num_processes", "--accelerate_config")
# Set by every accelerate launcher (simple, torchrun, DeepSpeed) or by torchrun itself.
_LAUNCHED_ENV = ("ACCELERATE_MIXED_PRECISION", "LOCAL_RANK", "TORCHELASTIC_RUN_ID")
# The accelerate config file `launch_stage` resolved (`--accelerate_config zero3` names a file TRL
# ships), for the stage processes' `launch` record: their parent's command line holds only the name.
ACCELERATE_CONFIG_ENV = "SKYWORK_RL_ACCELERATE_CONFIG"
# `accelerate launch` options that name its config file.
_CONFIG_FILE_OPTIONS = ("--config_file", "--config-file")


def split_run_options(argv: Sequence[str]) -> tuple[list[str], bool, list[str]]:
    """(accelerate launch options, whether `--force` was given, the stage's own arguments)."""
    launch: list[str] = []
    rest: list[str] = []
    force = False
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if arg == "--force":
            force = True
        elif name in LAUNCH_OPTIONS:
            if "=" in arg:
                launch += [name, arg.split("=", 1)[1]]
            elif i + 1 < len(args):
                launch += [arg, args[i + 1]]
                i += 1
            else:
                raise RecipeError(f"{arg}: expected a value")
        else:
            rest.append(arg)
        i += 1
    return launch, force, rest


def already_launched() -> bool:
    """Whether this process was started by `accelerate launch` / torchrun."""
    return any(key in os.environ for key in _LAUNCHED_ENV)


def launch_stage(stage_name: str, launch_args: list[str], stage_args: list[str]) -> int:
    """Run `skywork_rl.cli stage stage_name *stage_args` under `accelerate launch *launch_args`.

    Returns the exit code: the stage's processes print their own errors.
    """
    from accelerate.commands.launch import launch_command, launch_command_parser
    from trl.cli.accelerate_config import resolve_accelerate_config_argument

    if already_launched():
        raise RecipeError(
            f"{' '.join(launch_args)}: this stage already runs under accelerate launch; give the launch "
            "options to `accelerate launch`, or drop `accelerate launch` and keep them here"
        )
    try:
        launch_args = resolve_accelerate_config_argument(launch_args)
    except ValueError as exc:
        raise RecipeError(f"--accelerate_config: {exc}") from exc
    args = launch_command_parser().parse_args(
        [*launch_args, "--module", "skywork_rl.cli", "stage", stage_name, *stage_args]
    )
    if args.config_file:
        os.environ[ACCELERATE_CONFIG_ENV] = os.path.abspath(args.config_file)
    try:
        launch_command(args)
    except subprocess.CalledProcessError as exc:  # one process (accelerate's simple launcher)
        return exc.returncode or 1
    except Exception as exc:  # torchrun's ChildFailedError: the ranks printed their errors above
        failures = getattr(exc, "failures", None)
        if failures is None:
            raise
        codes = ", ".join(f"rank {rank}: exit code {f.exitcode}" for rank, f in sorted(failures.items()))
        print(f"error: the stage's processes failed ({codes}); their output is above", flush=True)
        return 1
    return 0


def launch_record() -> dict[str, Any]:
    """How this stage process was launched, as `stage.json` records it under "launch".

    Read from the process itself, never from the recipe: the process count and node count from the
    launcher's environment (WORLD_SIZE; torchrun's GROUP_WORLD_SIZE, GROUP_RANK), the ZeRO stage from
    accelerate's state once a trainer built it (its DeepSpeed plugin), else from the environment
    accelerate builds that plugin from (ACCELERATE_USE_DEEPSPEED, ACCELERATE_DEEPSPEED_ZERO_STAGE),
    and the accelerate config file from the launcher that started this process.
    """
    machines = int(os.environ.get("GROUP_WORLD_SIZE", "1"))
    return {
        "accelerate_config": _accelerate_config_file(),
        "zero_stage": _zero_stage(),
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
        "machines": machines,
        "machine_rank": int(os.environ.get("GROUP_RANK", "0")),
    }


def _zero_stage() -> int | None:
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state:  # a trainer (accelerator) exists in this process
        plugin = AcceleratorState().deepspeed_plugin
        return None if plugin is None else int(plugin.zero_stage)
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return None
    return int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))  # accelerate's own default


def _accelerate_config_file() -> str | None:
    """The `--config_file` of the `accelerate launch` that started this process (absolute), or None.

    `skywork-rl stage --accelerate_config` passes the file it resolved in ACCELERATE_CONFIG_ENV; an
    explicit `accelerate launch --config_file F` (the pipeline runner's, or a user's) is this
    process's parent (accelerate runs torchrun and DeepSpeed's launcher in-process).
    """
    if os.environ.get(ACCELERATE_CONFIG_ENV):
        return os.environ[ACCELERATE_CONFIG_ENV]
    if not already_launched():
        return None
    import psutil

    try:
        parent = psutil.Process().parent()
        argv, cwd = (parent.cmdline(), parent.cwd()) if parent is not None else ([], "")
    except psutil.Error:
        return None
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if name in _CONFIG_FILE_OPTIONS:
            value = value or (argv[i + 1] if i + 1 < len(argv) else "")
            return os.path.abspath(os.path.join(cwd, value)) if value else None
    from accelerate.commands.config import default_config_file  # what accelerate falls back to

    return default_config_file if os.path.isfile(default_config_file) else None
