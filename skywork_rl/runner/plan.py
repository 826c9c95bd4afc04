"""A pipeline file resolved into stages: configs, output folders, inputs and commands (nothing runs).

    name: tiny
    output_root: outputs/tiny
    accelerate_config: ../accelerate/cpu.yaml    # relative to this file
    num_processes: 1                             # optional; both may also be set per stage
    stages:
      - {id: model, stage: tiny-model}
      - {id: data, stage: demo-data, config: {demo: {num_examples: 64}}}
      - {id: sft, stage: sft, recipe: sft.yaml, overrides: {training: {max_steps: 20}}}

Each stage gets its own folder under `output_root` and takes the newest model and dataset made
before it unless its entry names them. Each stage's config is parsed here with the stage's own
parser, so a typo fails before anything runs, and its resolved values are kept for fingerprinting.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from skywork_rl.families.capabilities import check_family_capabilities
from skywork_rl.families.registry import FAMILIES, FAMILY_REGISTRY
from skywork_rl.stages.base import RecipeError, Stage
from skywork_rl.stages.parsing import parse_config, resolved_dict
from skywork_rl.stages.registry import get_stage_class

_INTERP = re.compile(r"\$\{([^}]+)\}")
TOP_LEVEL_KEYS = ("name", "output_root", "accelerate_config", "num_processes", "stages")
STAGE_KEYS = (
    "id",
    "stage",
    "recipe",
    "config",
    "overrides",
    "accelerate_config",
    "num_processes",
    "launcher",
)


@dataclass
class PlannedStage:
    """One stage of a resolved pipeline: what runs, where, on what."""

    id: str
    stage: str
    stage_class: type[Stage]
    config: dict[str, Any]
    output_dir: Path
    input_model: str | None
    input_data: str | None
    accelerate_config: Path | None
    num_processes: int | None
    launcher: str
    recipe_file: Path = field(init=False)
    # The config as the stage's parser resolves it (defaults < recipe), set by `validate` when the
    # pipeline is planned: what the checks, preflight and the fingerprint read.
    resolved: dict[str, Any] = field(default_factory=dict)
    # `accelerate launch` options beyond the config file and process count (a rehearsal's fp32).
    launch_args: list[str] = field(default_factory=list)
    # A rehearsal's record of what it substituted (`skywork_rl.runner.rehearsal`); None for a real run.
    rehearsal: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.recipe_file = self.output_dir / "recipe.yaml"

    def expected_processes(self) -> int | None:
        """How many processes the stage will run on (None: accelerate's default config decides)."""
        if self.launcher == "python":
            return 1
        if self.num_processes is not None:
            return int(self.num_processes)
        if self.accelerate_config is not None and self.accelerate_config.is_file():
            found = (yaml.safe_load(self.accelerate_config.read_text()) or {}).get("num_processes")
            return int(found) if found is not None else 1
        return None

    def command(self, force: bool = False) -> list[str]:
        """The stage's command line; `force` makes it redo a finished or changed stage from scratch."""
        stage_cmd = ["-m", "skywork_rl.cli", "stage", self.stage, "--config", str(self.recipe_file)]
        if force:
            stage_cmd.append("--force")
        if self.launcher == "python":
            return [sys.executable, *stage_cmd]
        cmd = [sys.executable, "-m", "accelerate.commands.launch"]
        if self.accelerate_config is not None:
            cmd += ["--config_file", str(self.accelerate_config)]
        if self.num_processes is not None:
            cmd += ["--num_processes", str(self.num_processes)]
        return [*cmd, *self.launch_args, *stage_cmd]


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[last] = value


def get_dotted(tree: dict[str, Any], key: str) -> Any:
    for p in key.split("."):
        if not isinstance(tree, dict) or p not in tree:
            return None
        tree = tree[p]
    return tree


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = (
            merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )
    return out


def _interpolate(value: Any, context: dict[str, Any], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        found = get_dotted(context, match.group(1))
        if found is None:
            raise RecipeError(
                f"{where}: cannot resolve ${{{match.group(1)}}} (known: output_root, stages.<id>.output_dir)"
            )
        return str(found)

    return _INTERP.sub(sub, value)


def _load_yaml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise RecipeError(f"{what}: no such file {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"{what} {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{what} {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def plan_pipeline(
    path: str | Path, output_root: str | None = None
) -> tuple[dict[str, Any], list[PlannedStage]]:
    """Resolve a pipeline file into stages with their final configs, each parsed by its stage's parser
    (`PlannedStage.resolved`; nothing runs)."""
    path = Path(path)
    spec = _load_yaml(path, "pipeline")
    unknown = sorted(set(spec) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise RecipeError(
            f"pipeline {path}: unknown top-level key(s) {unknown}; allowed: {list(TOP_LEVEL_KEYS)}"
        )
    base = path.parent
    root = Path(output_root or spec.get("output_root") or f"outputs/{spec.get('name', path.stem)}")
    entries = spec.get("stages")
    if not isinstance(entries, list) or not entries:
        raise RecipeError(f"pipeline {path}: key 'stages' must be a non-empty list of stage entries")
    context: dict[str, Any] = {"output_root": str(root), "stages": {}}
    last: dict[str, str | None] = {"model": None, "data": None}
    planned: list[PlannedStage] = []
    for i, entry in enumerate(entries):
        stage = _plan_entry(entry, f"pipeline {path}: stages[{i}]", base, root, spec, context, last)
        validate(stage)
        planned.append(stage)
        context["stages"][stage.id] = {"output_dir": str(stage.output_dir)}
        last[stage.stage_class.produces] = str(stage.output_dir)
    return spec, planned


def _plan_entry(
    entry: Any,
    where: str,
    base: Path,
    root: Path,
    spec: dict[str, Any],
    context: dict[str, Any],
    last: dict[str, str | None],
) -> PlannedStage:
    if not isinstance(entry, dict) or "stage" not in entry:
        raise RecipeError(f"{where}: expected a mapping with at least 'stage' (and 'id'), got {entry!r}")
    unknown = set(entry) - set(STAGE_KEYS)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(STAGE_KEYS)}")
    sid = str(entry.get("id", entry["stage"]))
    where = f"{where} ({sid})"
    if sid in context["stages"]:
        raise RecipeError(f"{where}: duplicate stage id {sid!r}")
    try:
        stage_class = get_stage_class(entry["stage"])
    except (KeyError, ImportError) as exc:
        raise RecipeError(f"{where}.stage: {exc.args[0] if exc.args else exc}") from exc
    config: dict[str, Any] = {}
    if "recipe" in entry:
        config = _load_yaml(base / entry["recipe"], f"{where}.recipe")
    for key in ("config", "overrides"):
        if key in entry:
            if not isinstance(entry[key], dict):
                raise RecipeError(f"{where}.{key}: expected a mapping, got {type(entry[key]).__name__}")
            config = merge(config, entry[key])
    explicit = merge(entry.get("config") or {}, entry.get("overrides") or {})
    config = _interpolate(config, context, where)
    out = root / sid
    set_dotted(config, stage_class.output_dir_key, str(out))
    acc = entry.get("accelerate_config", spec.get("accelerate_config"))
    return PlannedStage(
        id=sid,
        stage=entry["stage"],
        stage_class=stage_class,
        config=config,
        output_dir=out,
        input_model=_chain_input(config, explicit, stage_class.input_model_key, last["model"]),
        input_data=_chain_input(config, explicit, stage_class.input_data_key, last["data"]),
        accelerate_config=(base / acc) if acc else None,
        num_processes=entry.get("num_processes", spec.get("num_processes")),
        launcher=entry.get("launcher", "accelerate" if stage_class.distributed else "python"),
    )


def _chain_input(
    config: dict[str, Any], explicit: dict[str, Any], key: str | None, last: str | None
) -> str | None:
    """The pipeline feeds the previous stage's output unless the pipeline entry names the input itself."""
    if key is None:
        return None
    if get_dotted(explicit, key):
        return str(get_dotted(config, key))
    if last is not None:
        set_dotted(config, key, last)
    return get_dotted(config, key)


def validate(stage: PlannedStage) -> None:
    """Parse a planned stage's config in memory with its parser (types, unknown keys, every default
    from the stage's dataclasses, TRL's included) and keep the resolved values (`stage.resolved`):
    `plan_pipeline` does it once per stage, and the checks, preflight and the fingerprint read them.
    The stage's own process resolves the same values from its ``recipe.yaml``."""
    _, namespace = parse_config(stage.stage_class, stage.config, source=f"{stage.id} ({stage.stage})")
    stage.resolved = resolved_dict(namespace)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def input_files(stage: PlannedStage) -> list[tuple[str, Path]]:
    """(config key, absolute path) of each local file the stage reads besides its chained input (its
    class's `input_file_keys`)."""
    found = []
    for key in stage.stage_class.input_file_keys:
        value = get_dotted(stage.config, key)
        for path in value if isinstance(value, list) else [value] if value else []:
            found.append((key, Path(os.path.normpath(os.path.abspath(str(path))))))
    return found


def made_by(path: Path, stages: list[PlannedStage]) -> PlannedStage | None:
    """The stage among `stages` whose output folder holds `path` (an absolute path), if any."""
    return next(
        (s for s in stages if _inside(path, Path(os.path.normpath(os.path.abspath(s.output_dir))))), None
    )


def check_made_inputs(stages: list[PlannedStage]) -> None:
    """Refuse a plan in which a stage reads a local file (its class's `input_file_keys`, e.g. dedup's
    ``decontaminate.benchmarks``) that neither exists nor is made by an earlier stage: the run would
    fail there with "no such file" after every stage before it had run (hours, on the papers' plans)."""
    for n, stage in enumerate(stages):
        for key, path in input_files(stage):
            if made_by(path, stages[:n]) is not None or path.exists():
                continue
            later = made_by(path, stages[n:])
            if later is not None:
                raise RecipeError(
                    f"stage {stage.id}: {key} names {path}, which stage {later.id} makes, but {later.id} runs "
                    f"after {stage.id}; move {later.id} before it"
                )
            raise RecipeError(
                f"stage {stage.id}: {key} names {path}: no such file or folder, and no earlier stage of "
                f"this pipeline makes it; {stage.stage_class.input_file_keys[key]}, or create the file before the run"
            )


def check_models(stages: list[PlannedStage]) -> None:
    """Before any stage starts: every ``tiny.arch`` is one `skywork_rl.miniature.tiny` can build, and every
    training stage's model is a family the project can train (its model type has part patterns, or
    the recipe gives `model.part_patterns`) and can serve what its recipe asks (e.g.
    `training.assistant_only_loss`). A model's type comes from the tiny-model stage that makes it in
    this pipeline, or from its folder's config.json; a hub id or a folder made by another kind of
    stage is checked when its stage loads it."""
    made: dict[str, str] = {}  # output folder -> model type of the tiny-model stage that makes it
    for stage in stages:
        where = f"stage {stage.id} ({stage.stage})"
        if stage.stage_class.name == "tiny-model":
            arch = get_dotted(stage.resolved, "tiny.arch") or "internvl"
            if arch not in FAMILIES:
                raise RecipeError(
                    f"{where}: tiny.arch {arch!r} is not a tiny model family; choose from {list(FAMILIES)}"
                )
            made[os.path.normpath(os.path.abspath(stage.output_dir))] = arch
            continue
        if stage.stage_class.input_model_key != "model.name_or_path" or not stage.input_model:
            continue
        model_type = made.get(os.path.normpath(os.path.abspath(stage.input_model))) or _model_type_on_disk(
            stage.input_model
        )
        if model_type is None:
            continue
        model = stage.resolved.get("model") or {}
        trains = hasattr(stage.stage_class, "build_trainer")
        if (
            trains
            and model_type not in FAMILY_REGISTRY
            and set(model.get("part_patterns") or {})
            != {
                "vision",
                "connector",
                "llm",
            }
        ):
            raise RecipeError(
                f"{where}: model.name_or_path {stage.input_model} is a {model_type!r} model, which has no part "
                f"patterns (known: {sorted(FAMILY_REGISTRY)}); set model.part_patterns (vision, connector, llm "
                "regexes over parameter names) in its recipe, or use a known family"
            )
        needs = (
            ["assistant_only_loss"]
            if (stage.resolved.get("training") or {}).get("assistant_only_loss")
            else []
        )
        check_family_capabilities(model_type, needs, where=where)


def _model_type_on_disk(location: str) -> str | None:
    """`model_type` from a local checkpoint folder's config.json, or None (a hub id, not made yet, unreadable)."""
    import json

    try:
        value = json.loads((Path(location) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
