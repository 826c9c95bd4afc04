"""Stage registry: pipeline recipes name a stage, the registry finds its class.

Names map to ``module:Class`` strings so that `skywork-rl --help` or a data stage never imports
TRL's trainers (and torch models) it does not need; a class is imported when its stage runs.
The core registers its own stages here; `data_prep` registers the curation stages through its
plugin (`skywork_rl.plugins`), as a user's package can. A recipe may also name ``module:Class``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from skywork_rl.plugins import PluginError, load_plugins

if TYPE_CHECKING:
    from skywork_rl.stages.base import Stage

_STAGES: dict[str, str] = {
    "tiny-model": "skywork_rl.stages.tiny_model:TinyModelStage",
    "demo-data": "skywork_rl.stages.demo_data:DemoDataStage",
    "sft": "skywork_rl.stages.sft:SFTStage",
    "grpo": "skywork_rl.stages.grpo:GRPOStage",
    "mpo": "skywork_rl.stages.mpo:MPOStage",
    "connector": "skywork_rl.stages.connector:ConnectorStage",
}


def register_stage(name: str, target: str | type[Stage]) -> None:
    """Register a stage class (or its ``module:Class`` path) under `name`.

    Registering the same target again is a no-op; another target under a taken name is an error
    (two packages claiming one stage name would otherwise depend on load order)."""
    if not isinstance(target, str):
        target = f"{target.__module__}:{target.__qualname__}"
    existing = _STAGES.get(name)
    if existing is not None and existing != target:
        raise PluginError(f"stage {name!r} is registered twice: {existing} and {target}")
    _STAGES[name] = target


def registered_stages() -> dict[str, str]:
    """Every stage name and its ``module:Class``: the core's and the plugins'."""
    load_plugins()
    return dict(_STAGES)


def get_stage_class(name: str) -> type[Stage]:
    """The class of stage `name` (a registered name or a ``module:Class`` import path)."""
    stages = registered_stages()
    target = stages.get(name, name if ":" in name else None)
    if target is None:
        raise KeyError(
            f"unknown stage {name!r}; registered stages: {sorted(stages)} (or give 'module:Class')"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"stage {name!r}: cannot import {module_name!r} ({exc})") from exc
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise ImportError(f"stage {name!r}: module {module_name!r} has no class {class_name!r}") from exc
