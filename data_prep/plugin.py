"""What `data_prep` adds to the core: the curation stages, by name, for recipes and pipelines.

Declared in pyproject.toml as the ``skywork_rl.plugins`` entry point ``data_prep``; the core's
stage registry runs `register` before it answers, so the core itself never names this package.
"""

from __future__ import annotations

from skywork_rl.stages.registry import register_stage

STAGES: dict[str, str] = {
    "load-data": "data_prep.stages:LoadDataStage",
    "clean": "data_prep.stages:CleanStage",
    "dedup": "data_prep.stages:DedupStage",
    "pass-rate-filter": "data_prep.stages:PassRateFilterStage",
    "distill": "data_prep.stages:DistillStage",
    "preference-pairs": "data_prep.preference_stage:PreferencePairsStage",
    "mix-data": "data_prep.mix_stage:MixDataStage",
}


def register() -> None:
    """Register the curation stages (import paths only: nothing heavy is imported here)."""
    for name, target in STAGES.items():
        register_stage(name, target)
