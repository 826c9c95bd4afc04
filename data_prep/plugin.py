"""What `data_prep` adds to the core: the curation stages, by name, for recipes and pipelines.

Declared in pyproject.toml as the ``skywork_rl.plugins`` entry point ``data_prep``; the core's
stage registry runs `register` before it answers, so the core itself never names this package.
"""

from __future__ import annotations

from skywork_rl.stages.registry import register_stage


def register() -> None:
    """Register the curation stages (import paths only: nothing heavy is imported here)."""
    register_stage("load-data", "data_prep.stages:LoadDataStage")
    register_stage("clean", "data_prep.stages:CleanStage")
    register_stage("dedup", "data_prep.stages:DedupStage")
    register_stage("pass-rate-filter", "data_prep.stages:PassRateFilterStage")
    register_stage("distill", "data_prep.stages:DistillStage")
    register_stage("preference-pairs", "data_prep.preference_stage:PreferencePairsStage")
    register_stage("mix-data", "data_prep.mix_stage:MixDataStage")
