"""A stage's recipe and command line, parsed the way TRL's parser does it.

`skywork-rl stage NAME --config recipe.yaml --training.max_steps 3` resolves each option as
defaults < recipe < command line whatever the order of the arguments: TRL's `TrlParser` reads the
`--config` file into the defaults before it parses the command line; jsonargparse applies a
`--config` where it stands, so the config files are moved in front of the other arguments first.
The help text of every option is its dataclass field's ``metadata["help"]`` (TRL's and ours).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from skywork_rl.errors import SkyworkError
from skywork_rl.records.fingerprint import force_overrides_for

if TYPE_CHECKING:
    from skywork_rl.stages.base import Stage

# Options of `skywork-rl stage` that say how to run a stage, not what it computes: handled by the
# command line (skywork_rl/cli.py, skywork_rl/stages/launch.py) before parsing, never recipe keys; `--help`
# lists them after the recipe options.
RUN_OPTIONS_HELP = (
    (
        "--force",
        "Redo a finished stage from scratch: its force overrides apply (training stages do not "
        "resume, data stages replace their output) and the previous run's checkpoints are removed.",
    ),
    ("--num_processes N", "Launch the stage with `accelerate launch` on N processes (as `trl sft` does)."),
    (
        "--accelerate_config C",
        "Launch with this accelerate config file (or one of TRL's named configs, "
        "e.g. multi_gpu, zero2, zero3).",
    ),
)


def run_options_help() -> str:
    """The run options, formatted like argparse's option list."""
    import textwrap

    return "\n".join(
        textwrap.fill(text, width=100, initial_indent=f"  {flag:24s}", subsequent_indent=" " * 26)
        for flag, text in RUN_OPTIONS_HELP
    )


class RecipeError(SkyworkError, ValueError):
    """A recipe does not parse or does not resolve; the message names the file and key."""

    exit_code = 2  # a usage error, as argparse exits


def config_first(argv: Sequence[str]) -> list[str]:
    """`argv` with every `--config FILE` (or `--config=FILE`) moved to the front, in their order."""
    configs: list[str] = []
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        if args[i] == "--config" and i + 1 < len(args):
            configs += args[i : i + 2]
            i += 2
            continue
        (configs if args[i].startswith("--config=") else rest).append(args[i])
        i += 1
    return configs + rest


def build_parser(stage_class: type[Stage]) -> Any:
    """A jsonargparse parser whose groups are the fields of the stage's config dataclass."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(
        prog=f"skywork-rl stage {stage_class.name}",
        description=(stage_class.__doc__ or "").strip().split("\n\n")[0],
        exit_on_error=False,
        default_env=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML recipe for this stage")
    group_types = {}
    for f in dataclasses.fields(stage_class.config_class):
        if dataclasses.is_dataclass(f.type) or isinstance(f.type, type):
            group_type = f.type
        else:
            group_type = typing.get_type_hints(stage_class.config_class)[f.name]
        group_types[f.name] = group_type
        parser.add_class_arguments(group_type, f.name, help=f.metadata.get("help"))
    _document_options(parser, group_types)
    return parser


def _document_options(parser: Any, group_types: dict[str, type]) -> None:
    """Give each `--group.key` option its field's ``metadata["help"]`` (jsonargparse reads docstrings
    only, so TRL's documentation of e.g. `learning_rate` would be lost)."""
    docs: dict[str, str] = {}
    for group, group_type in group_types.items():
        if dataclasses.is_dataclass(group_type):
            for f in dataclasses.fields(group_type):
                text = f.metadata.get("help")
                if text:
                    docs[f"{group}.{f.name}"] = " ".join(str(text).split()).replace("%", "%%")
    for action in parser._actions:  # jsonargparse exposes no public walk over its actions
        if not action.help and action.dest in docs:
            action.help = docs[action.dest]


def parse_namespace(
    stage_class: type[Stage], argv: Sequence[str], source: str = "command line"
) -> tuple[Any, Any]:
    """The parser and the parsed namespace of recipe + overrides (types and unknown keys checked)."""
    from jsonargparse import ArgumentError

    parser = build_parser(stage_class)
    try:
        namespace = parser.parse_args(config_first(argv))
    except (ArgumentError, ValueError, TypeError) as exc:
        raise RecipeError(f"recipe {source}: stage {stage_class.name!r}: {_clean(exc)}") from exc
    refuse_moved_keys(stage_class, namespace, source)
    return parser, namespace


def parse_config(stage_class: type[Stage], config: dict[str, Any], source: str) -> tuple[Any, Any]:
    """`parse_namespace` of a recipe given as data, not as a file: a pipeline's stage, resolved in
    memory. It gives the values the stage's own process gets from the same data written to its
    ``recipe.yaml`` (`--config`), which `tests/test_one_home.py` checks for every shipped recipe."""
    from jsonargparse import ArgumentError

    parser = build_parser(stage_class)
    try:
        namespace = parser.parse_object(config)
    except (ArgumentError, ValueError, TypeError) as exc:
        raise RecipeError(f"recipe {source}: stage {stage_class.name!r}: {_clean(exc)}") from exc
    refuse_moved_keys(stage_class, namespace, source)
    return parser, namespace


def refuse_moved_keys(stage_class: type[Stage], namespace: Any, source: str) -> None:
    """Refuse a recipe that sets one of the stage's `moved_keys`, naming the key that holds it now."""
    for key, home in stage_class.moved_keys.items():
        if namespace.get(key) is not None:
            raise RecipeError(f"recipe {source}: stage {stage_class.name!r}: {key} is not read; {home}")


def resolved_dict(namespace: Any) -> dict[str, Any]:
    """The parsed values as plain data, without the recipe file names (what ``stage.json`` records)."""
    values = namespace.clone().as_dict()
    values.pop("config", None)
    return values


def parse_stage_config(
    stage_class: type[Stage], argv: Sequence[str], source: str = "command line", instantiate: bool = True
) -> Any:
    """Parse a stage's recipe + overrides into its config dataclass; errors name the source and key."""
    parser, namespace = parse_namespace(stage_class, argv, source)
    if not instantiate:
        return namespace
    return _instantiate(stage_class, parser, namespace, source)


def _instantiate(stage_class: type[Stage], parser: Any, namespace: Any, source: str) -> Any:
    try:
        groups = parser.instantiate(namespace)
    except (ValueError, TypeError) as exc:
        raise RecipeError(f"recipe {source}: stage {stage_class.name!r}: {exc}") from exc
    values = {f.name: getattr(groups, f.name) for f in dataclasses.fields(stage_class.config_class)}
    return stage_class.config_class(**values)


def load_stage(
    stage_class: type[Stage], argv: Sequence[str], source: str = "command line", force: bool = False
) -> Stage:
    """Parse, apply the stage's force overrides when `force`, and build the stage."""
    parser, namespace = parse_namespace(stage_class, argv, source)
    return stage_from_namespace(stage_class, parser, namespace, source, force)


def stage_from_namespace(
    stage_class: type[Stage], parser: Any, namespace: Any, source: str, force: bool = False
) -> Stage:
    """Build the stage from parsed values (with the force overrides applied when `force`).

    The stage keeps the resolved values (`Stage.resolved_config`): `run_stage` fingerprints them, and
    the pipeline runner, which resolves the same recipe, compares its own fingerprint with that one.
    """
    if force:
        for key, value in _flat(force_overrides_for(stage_class)).items():
            namespace[key] = value
    resolved = resolved_dict(namespace)
    stage = stage_class(_instantiate(stage_class, parser, namespace, source))
    stage.resolved_config = resolved
    return stage


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else key
        out.update(_flat(value, dotted) if isinstance(value, dict) else {dotted: value})
    return out


def _clean(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.replace("Parser key", "key").replace('"', "'")
