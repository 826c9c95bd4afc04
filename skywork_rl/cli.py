"""`skywork-rl`: one command for every stage, the pipeline runner, eval and tools.

Subcommands dispatch to the module that owns them and import it only then, so `--help` is fast
and a data-only command never loads TRL's trainers. Under `accelerate launch` use the module form:
`accelerate launch --config_file recipes/accelerate/ddp.yaml -m skywork_rl.cli stage grpo --config X`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence

# name -> (module:function taking argv, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "stage": (
        "skywork_rl.cli:stage_main",
        "run one stage from a YAML recipe (+ --group.key value overrides)",
    ),
    "run": ("skywork_rl.pipeline:main", "run a pipeline YAML: stages chained, finished ones skipped"),
    "stages": ("skywork_rl.cli:list_stages_main", "list the registered stages"),
    "make-tiny-model": ("skywork_rl.tiny:main", "write a tiny random-weight VLM checkpoint folder"),
    "make-demo-data": ("data_prep.synthetic:main", "render the offline synthetic dataset"),
    "eval": ("eval.cli:main", "evaluate a checkpoint on benchmarks, or `eval score` saved responses"),
    "select": ("eval.select:main", "rank checkpoints by critical-token entropy (and accuracy)"),
}

USAGE = (
    "usage: skywork-rl COMMAND [ARGS]\n\nSkywork R1V2/R1V3 post-training on Hugging Face TRL.\n\ncommands:\n"
)


def _resolve(target: str) -> Callable[[list[str]], int]:
    module_name, _, func = target.partition(":")
    return getattr(importlib.import_module(module_name), func)


def stage_main(argv: list[str]) -> int:
    """`skywork-rl stage NAME --config FILE [--group.key value ...]`."""
    from skywork_rl.stages.base import RecipeError, parse_stage_config, run_stage
    from skywork_rl.stages.registry import STAGES, get_stage_class

    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: skywork-rl stage NAME --config FILE [--group.key value ...]\n"
            "       skywork-rl stage NAME --help   (every option of that stage, TRL's included)\n\n"
            f"stages: {', '.join(sorted(STAGES))}"
        )
        return 0
    name, rest = argv[0], argv[1:]
    try:
        stage_class = get_stage_class(name)
    except (KeyError, ImportError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in rest):
        from skywork_rl.stages.base import build_parser

        build_parser(stage_class).print_help()
        return 0
    source = _config_source(rest)
    try:
        config = parse_stage_config(stage_class, rest, source=source)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_stage(stage_class(config))
    # Last, with the trainer gone: join the process group's threads before Python exits (a gloo
    # worker still freeing tensors at interpreter shutdown aborts the process; see process_group.py).
    from skywork_rl.process_group import close_process_group

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
    from skywork_rl.stages.registry import STAGES

    for name, target in sorted(STAGES.items()):
        print(f"{name:20s} {target}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:16s} {help_}" for name, (_, help_) in COMMANDS.items()]
        print(USAGE + "\n".join(lines) + "\n\nRun `skywork-rl COMMAND --help` for a command's options.")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"skywork-rl: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return int(_resolve(COMMANDS[command][0])(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
