"""What a stage is, how its recipe is parsed, and the provenance every stage leaves behind.

A stage is a config dataclass (its fields are recipe groups: ``model``, ``data``, ``training`` ...,
where ``training`` subclasses a TRL config so every TRL knob still works) plus ``run()``. The
runner here parses YAML + CLI overrides with jsonargparse, runs the stage, and writes into the
output folder ``stage.json`` (stage, resolved config, input model, start/end, final metrics) and,
last and atomically, the completion marker the pipeline uses to skip finished stages.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from skywork_rl.atomic import write_atomic  # also imported from here by the pipeline
from skywork_rl.errors import SkyworkError

COMPLETE_MARKER = ".stage_complete"
STAGE_JSON = "stage.json"

logger = logging.getLogger("skywork_rl")


class RecipeError(SkyworkError, ValueError):
    """A recipe does not parse or does not resolve; the message names the file and key."""


class StageRefused(SkyworkError, RuntimeError):
    """A stage declined to start and changed nothing (e.g. a finished output it may not overwrite).

    `run_stage` then puts back the previous `stage.json` and completion marker, so a refused re-run
    never turns a finished stage into an unfinished one.
    """


class Stage(ABC):
    """Base of every pipeline stage.

    Subclasses set `name`, `config_class`, and the dotted keys the pipeline uses to chain stages:
    where the output goes (`output_dir_key`), which model it starts from (`input_model_key`, or
    None for stages that start from nothing) and which dataset it reads (`input_data_key`).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    produces: ClassVar[str] = "model"  # "model" or "data": what the next stage may take from this one
    output_dir_key: ClassVar[str] = "training.output_dir"
    input_model_key: ClassVar[str | None] = "model.name_or_path"
    input_data_key: ClassVar[str | None] = "data.train"
    distributed: ClassVar[bool] = True  # run under `accelerate launch` in a pipeline
    # What `skywork-rl run --force` adds to this stage's config so that it really redoes its work:
    # training stages start fresh instead of resuming their last checkpoint (see `force_overrides_for`).
    force_overrides: ClassVar[dict[str, Any]] = {}
    # Metric names (as stored in `stage.json` "metrics") the pipeline's closing report shows for this
    # stage, in this order; each stage declares its own so the runner knows no stage by name.
    report_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def output_dir(self) -> Path:
        return Path(get_dotted(self.config, self.output_dir_key))

    @property
    def input_model(self) -> str | None:
        return get_dotted(self.config, self.input_model_key) if self.input_model_key else None

    @abstractmethod
    def run(self) -> dict[str, float]:
        """Do the work; return the final metrics recorded in `stage.json`."""


def force_overrides_for(stage_class: type[Stage]) -> dict[str, Any]:
    """Config overrides that make a forced re-run redo the work rather than find it done."""
    if stage_class.force_overrides:
        return stage_class.force_overrides
    if stage_class.output_dir_key.startswith("training."):
        # `resume_from_checkpoint: auto` would resume from the final checkpoint and train 0 steps.
        return {"training": {"resume_from_checkpoint": None}}
    return {}


def get_dotted(obj: Any, key: str) -> Any:
    """`a.b.c` lookup over dataclasses, namespaces and dicts."""
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


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
    for f in dataclasses.fields(stage_class.config_class):
        if dataclasses.is_dataclass(f.type) or isinstance(f.type, type):
            group_type = f.type
        else:
            group_type = _resolve_type(stage_class.config_class, f.name)
        parser.add_class_arguments(group_type, f.name, help=f.metadata.get("help"))
    return parser


def _resolve_type(config_class: type, field_name: str) -> type:
    import typing

    return typing.get_type_hints(config_class)[field_name]


def parse_stage_config(
    stage_class: type[Stage], argv: Sequence[str], source: str = "command line", instantiate: bool = True
) -> Any:
    """Parse a stage's recipe + overrides into its config dataclass; errors name the source and key."""
    from jsonargparse import ArgumentError

    parser = build_parser(stage_class)
    try:
        namespace = parser.parse_args(list(argv))
    except (ArgumentError, ValueError, TypeError) as exc:
        raise RecipeError(f"recipe {source}: stage {stage_class.name!r}: {_clean(exc)}") from exc
    if not instantiate:
        return namespace
    try:
        groups = parser.instantiate(namespace)
    except (ValueError, TypeError) as exc:
        raise RecipeError(f"recipe {source}: stage {stage_class.name!r}: {exc}") from exc
    values = {f.name: getattr(groups, f.name) for f in dataclasses.fields(stage_class.config_class)}
    return stage_class.config_class(**values)


def _clean(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.replace("Parser key", "key").replace('"', "'")


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return _jsonable(obj.to_dict())
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", os.environ.get("PROCESS_INDEX", "0"))) == 0


def run_stage(stage: Stage) -> dict[str, float]:
    """Run `stage`, then write `stage.json` and the completion marker (main process only)."""
    out = stage.output_dir
    out.mkdir(parents=True, exist_ok=True)
    marker = out / COMPLETE_MARKER
    previous = {p: p.read_text() for p in (marker, out / STAGE_JSON) if p.exists()}
    if _is_main_process() and marker.exists():
        marker.unlink()  # a re-run invalidates the old completion until it finishes again
    started = time.time()
    record: dict[str, Any] = {
        "stage": stage.name,
        "stage_class": f"{type(stage).__module__}:{type(stage).__qualname__}",
        "input_model": stage.input_model,
        "config": _jsonable(stage.config),
        "argv": sys.argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "status": "running",
    }
    if _is_main_process():
        write_atomic(out / STAGE_JSON, json.dumps(record, indent=2))
    try:
        metrics = stage.run()
    except StageRefused:
        if _is_main_process():
            for path, text in previous.items():
                write_atomic(path, text)
            if out / STAGE_JSON not in previous:
                (out / STAGE_JSON).unlink(missing_ok=True)
        raise
    except BaseException as exc:
        if _is_main_process():
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}", ended_at=_now())
            write_atomic(out / STAGE_JSON, json.dumps(record, indent=2))
        raise
    if _is_main_process():
        record.update(
            status="complete",
            ended_at=_now(),
            duration_s=round(time.time() - started, 3),
            metrics=_jsonable(metrics or {}),
        )
        write_atomic(out / STAGE_JSON, json.dumps(record, indent=2))
        write_atomic(marker, record["ended_at"] + "\n")
    return metrics


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def is_complete(output_dir: str | Path) -> bool:
    """Whether a stage's output folder carries its completion marker."""
    return (Path(output_dir) / COMPLETE_MARKER).exists()
