"""Stage registry: pipeline recipes name a stage, the registry finds its class.

Names map to ``module:Class`` strings so that `skywork-rl --help` or a data stage never imports
TRL's trainers (and torch models) it does not need; a class is imported when its stage runs.
The core registers its own stages here; `data_prep` registers the curation stages through its
plugin (`skywork_rl.plugins`), as a user's package can. A recipe may also name ``module:Class``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skywork_rl.plugins import Registry, load_plugins

if TYPE_CHECKING:
    from skywork_rl.stages.base import Stage

STAGES = Registry("stage", before_lookup=load_plugins, import_paths=True)


def register_stage(name: str, target: str | type[Stage]) -> None:
    """Register a stage class (or its ``module:Class`` path) under `name`.

    Registering the same target again is a no-op; another target under a taken name is an error
    (two packages claiming one stage name would otherwise depend on load order)."""
    if not isinstance(target, str):
        target = f"{target.__module__}:{target.__qualname__}"
    STAGES.register(name, target)


register_stage("tiny-model", "skywork_rl.stages.tiny_model:TinyModelStage")
register_stage("demo-data", "skywork_rl.stages.demo_data:DemoDataStage")
register_stage("sft", "skywork_rl.stages.sft:SFTStage")
register_stage("grpo", "skywork_rl.stages.grpo:GRPOStage")
register_stage("mpo", "skywork_rl.stages.mpo:MPOStage")
register_stage("connector", "skywork_rl.stages.connector:ConnectorStage")


def registered_stages() -> dict[str, str]:
    """Every stage name and its ``module:Class``: the core's and the plugins'."""
    return STAGES.targets()


def get_stage_class(name: str) -> type[Stage]:
    """The class of stage `name` (a registered name or a ``module:Class`` import path); an unknown
    name is an `UnknownEntryError` (a `KeyError`), an unimportable one a `TargetImportError`."""
    return STAGES.get(name)  # type: ignore[no-any-return]
