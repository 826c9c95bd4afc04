"""`skywork-rl`: one command for every stage, the pipeline runner, eval and tools.

Subcommands dispatch to the module that owns them and import it only then, so `--help` is fast
and a data-only command never loads TRL's trainers. `skywork-rl stage NAME --num_processes N
--accelerate_config C` launches accelerate itself (as `trl sft` does); the module form under an
explicit launcher works too:
`accelerate launch --config_file recipes/accelerate/ddp.yaml -m skywork_rl.cli stage grpo --config X`.

Errors a user can act on (`SkyworkError`: a bad recipe, a missing input, a refused re-run; and a
full disk, a file size limit or a read-only / forbidden folder, whatever library hit it) print one
line, `error: ...`, and exit non-zero (2 for a recipe that does not parse, 1 otherwise), whichever
command raised them; `--debug` (anywhere on the line) or `SKYWORK_RL_DEBUG=1` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence

from skywork_rl.errors import DEBUG_ENV, SkyworkError, report_error, storage_error
from skywork_rl.plugins import import_target, plugin_commands
from skywork_rl.preflight.guard import CHECKED_ENV, SKIP_FLAG, guard_stage
from skywork_rl.runner.console import hide_unused_deepspeed_notice
from skywork_rl.runner.process_group import close_process_group
from skywork_rl.runner.stage_process import DIE_WITH_PARENT_ENV, die_with_parent, interrupt_once_on_stop
from skywork_rl.stages import base, launch  # run_stage, launch_stage: looked up when called (tests stand in)
from skywork_rl.stages.base import RecipeError, refuse_if_finished
from skywork_rl.stages.launch import already_launched, split_run_options
from skywork_rl.stages.parsing import (
    build_parser,
    parse_namespace,
    resolved_dict,
    run_options_help,
    stage_from_namespace,
)
from skywork_rl.stages.registry import get_stage_class, registered_stages

# name -> (module:function taking argv, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "stage": (
        "skywork_rl.cli:stage_main",
        "run one stage from a YAML recipe (+ --group.key value overrides)",
    ),
    "run": ("skywork_rl.runner.pipeline:main", "run a pipeline YAML: stages chained, finished ones skipped"),
    "preflight": (
        "skywork_rl.preflight.command:main",
        "check a recipe or pipeline fits the hardware (vLLM TP, GPU/host memory, disk) before it runs",
    ),
    "stages": ("skywork_rl.cli:list_stages_main", "list the registered stages"),
    "make-tiny-model": ("skywork_rl.miniature.tiny:main", "write a tiny random-weight VLM checkpoint folder"),
    "make-demo-data": ("skywork_rl.miniature.synthetic:main", "render the offline synthetic dataset"),
}  # `eval` and `select` come from eval's plugin (skywork_rl.plugins)

USAGE = (
    "usage: skywork-rl COMMAND [ARGS]\n\nSkywork R1V2/R1V3 post-training on Hugging Face TRL.\n\ncommands:\n"
)


def _resolve(target: str) -> Callable[[list[str]], int]:
    return import_target(target, what="command")  # type: ignore[no-any-return]


def stage_main(argv: list[str]) -> int:
    """`skywork-rl stage NAME --config FILE [--group.key value ...] [--force] [--num_processes N ...]`."""
    options = run_options_help()
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: skywork-rl stage NAME --config FILE [--group.key value ...] [--force]\n"
            "                        [--num_processes N] [--accelerate_config C] [--skip-preflight]\n"
            "       skywork-rl stage NAME --help   (every option of that stage, TRL's included)\n\n"
            f"{options}\n\nstages: {', '.join(sorted(registered_stages()))}"
        )
        return 0
    name, rest = argv[0], argv[1:]
    try:
        stage_class = get_stage_class(name)
    except (KeyError, ImportError) as exc:
        raise RecipeError(exc.args[0] if exc.args else str(exc)) from exc
    if any(a in ("-h", "--help") for a in rest):
        build_parser(stage_class).print_help()
        print(f"\nrunning the stage (command line only, not recipe keys):\n{options}")
        return 0
    skip_preflight = SKIP_FLAG in rest
    rest = [a for a in rest if a != SKIP_FLAG]
    launch_args, force, rest = split_run_options(rest)
    source = _config_source(rest)
    # Parse and check the output folder before anything heavy runs (or any process is launched).
    parser, namespace = parse_namespace(stage_class, rest, source)
    refuse_if_finished(stage_class, namespace[stage_class.output_dir_key], force)
    if not skip_preflight:  # where GPUs are visible: refuse what cannot fit before anything starts
        guard_stage(name, resolved_dict(namespace), source, launch_args)
    if launch_args:
        os.environ[CHECKED_ENV] = "1"  # the processes launched next: checked (or skipped) here
        try:
            return launch.launch_stage(name, launch_args, [*rest, *(["--force"] if force else [])])
        finally:
            os.environ.pop(CHECKED_ENV, None)
    base.run_stage(stage_from_namespace(stage_class, parser, namespace, source, force), force=force)
    # Last, with the trainer gone: join the process group's threads before Python exits (a gloo
    # worker still freeing tensors at interpreter shutdown aborts the process; see process_group.py).

    close_process_group()
    return 0


def _config_source(argv: Sequence[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return "command line"


def list_stages_main(argv: list[str]) -> int:
    for name, target in sorted(registered_stages().items()):
        print(f"{name:20s} {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(DIE_WITH_PARENT_ENV) or already_launched():
        # Started by `skywork-rl run` or by a launcher (accelerate / torchrun): end with the launcher.
        # torchrun starts each process in a session of its own, so a launcher killed outright (a node
        # going down, a scheduler's SIGKILL) would leave it training on, a rank short; the launcher's
        # SIGTERM records the stage as failed instead of killing it mid-write.
        die_with_parent()
        interrupt_once_on_stop()
    if "--debug" in argv:
        argv = [a for a in argv if a != "--debug"]
        os.environ[DEBUG_ENV] = "1"  # processes this command starts (accelerate, pipeline stages) too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")

    hide_unused_deepspeed_notice()

    commands = dict(COMMANDS)  # the core's first; a plugin cannot replace one
    for name, command in plugin_commands().items():
        commands.setdefault(name, command)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:16s} {help_}" for name, (_, help_) in commands.items()]
        print(
            USAGE + "\n".join(lines) + "\n\nRun `skywork-rl COMMAND --help` for a command's options; "
            "--debug shows the traceback of an error."
        )
        return 0
    command, rest = argv[0], argv[1:]
    if command not in commands:
        print(f"skywork-rl: unknown command {command!r}; commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    try:
        return int(_resolve(commands[command][0])(rest) or 0)
    except SkyworkError as exc:
        return report_error(exc)
    except Exception as exc:  # a full disk or a read-only folder is the user's to fix, not a bug
        fault = storage_error(exc)
        if fault is None:
            raise
        return report_error(fault)
    except KeyboardInterrupt:  # Ctrl-C: what was running has been stopped (a stage resumes next time)
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print("interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
