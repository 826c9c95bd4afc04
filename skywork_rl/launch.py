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

from skywork_rl.stages.parsing import RecipeError

# Options of `skywork-rl stage` that accelerate consumes (TRL accepts the same two spellings).
LAUNCH_OPTIONS = ("--num_processes", "--accelerate_config")
# Set by every accelerate launcher (simple, torchrun, DeepSpeed) or by torchrun itself.
_LAUNCHED_ENV = ("ACCELERATE_MIXED_PRECISION", "LOCAL_RANK", "TORCHELASTIC_RUN_ID")


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
