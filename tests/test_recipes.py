"""Every recipe under recipes/ parses and resolves on this CPU machine, nothing instantiated or run.

Pipelines go through the runner's `--dry-run` (plan + each stage's parser); single-stage recipes
through their stage's parser; accelerate configs through accelerate's own config loader. GPU-size
recipes (bf16, flash-attention, vLLM) are checked the same way: types and keys, not hardware.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skywork_rl.runner.pipeline import plan_pipeline, run_pipeline
from skywork_rl.stages.base import RecipeError, parse_stage_config
from skywork_rl.stages.registry import get_stage_class, registered_stages

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ACCELERATE = RECIPES / "accelerate"


def _yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path}: top level must be a mapping"
    return data


NOT_RECIPES = {RECIPES / "paper_values.yaml"}  # the papers' numbers, read by tests/test_paper_values.py


def _recipe_files() -> list[Path]:
    return sorted(p for p in RECIPES.rglob("*.yaml") if ACCELERATE not in p.parents and p not in NOT_RECIPES)


PIPELINES = [p for p in _recipe_files() if "stages" in _yaml(p)]
STAGE_RECIPES = [p for p in _recipe_files() if "stages" not in _yaml(p)]


def _id(path: Path) -> str:
    return str(path.relative_to(RECIPES))


def _stage_of(recipe: Path) -> str:
    """The stage a single-stage recipe is for: the one a pipeline runs it with, else its file name up to
    the first underscore (sft.yaml -> sft; a named variant grpo_ssb.yaml -> grpo)."""
    for pipeline in PIPELINES:
        for entry in _yaml(pipeline)["stages"]:
            if "recipe" in entry and (pipeline.parent / entry["recipe"]).resolve() == recipe.resolve():
                return entry["stage"]
    return recipe.stem.split("_")[0]


def test_recipe_tree_has_the_paper_and_tiny_recipes():
    names = {_id(p) for p in _recipe_files()}
    assert {"tiny/pipeline.yaml", "skywork-r1v3/pipeline.yaml", "skywork-r1v2/pipeline.yaml"} <= names
    assert {"skywork-r1v3/sft.yaml", "skywork-r1v3/grpo.yaml", "skywork-r1v3-8b/pipeline.yaml"} <= names
    assert {
        "skywork-r1v3-8b/grpo.yaml",
        "skywork-r1v3-8b/connector.yaml",
        "skywork-r1v3/connector.yaml",
    } <= names


PAPER_PIPELINES = [p for p in PIPELINES if p.parent.name.startswith("skywork-")]


def _strings(tree: object) -> list[str]:
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _strings(v)]
    return [tree] if isinstance(tree, str) else []


@pytest.mark.parametrize("pipeline", PAPER_PIPELINES, ids=_id)
def test_pipeline_reads_only_its_own_outputs_and_named_datasets(pipeline, tmp_path):
    """Every path a resolved stage config names is under the pipeline's own output_root, or an external
    dataset/model (a hub id or a data/ folder); a recipe default pointing into some outputs/ folder (another
    pipeline's run) must be replaced by the pipeline, never reach a stage."""
    root = tmp_path / "own"
    _, stages = plan_pipeline(pipeline, output_root=str(root))
    leaks = [
        f"{stage.id}: {value}"
        for stage in stages
        for value in _strings(stage.config)
        if "outputs/" in value and not value.startswith(str(root))
    ]
    assert not leaks, f"{_id(pipeline)} reads outputs that are not its own: {leaks}"


@pytest.mark.parametrize("recipe", STAGE_RECIPES, ids=_id)
def test_stage_recipe_parses_with_its_stage(recipe):
    stage = _stage_of(recipe)
    assert stage in registered_stages(), (
        f"{_id(recipe)}: no registered stage {stage!r}; name the file after its stage"
    )
    namespace = parse_stage_config(
        get_stage_class(stage), ["--config", str(recipe)], source=_id(recipe), instantiate=False
    )
    assert namespace.training.output_dir, f"{_id(recipe)}: training.output_dir must be set"


@pytest.mark.parametrize("pipeline", PIPELINES, ids=_id)
def test_pipeline_dry_run_resolves_every_stage(pipeline, tmp_path, capsys):
    spec = _yaml(pipeline)
    report = run_pipeline(pipeline, dry_run=True, output_root=str(tmp_path / "out"))
    assert report["stages"] == [str(e.get("id", e["stage"])) for e in spec["stages"]]
    _, stages = plan_pipeline(pipeline, output_root=str(tmp_path / "out"))
    for stage in stages:
        assert stage.accelerate_config is None or stage.accelerate_config.is_file(), (
            f"{_id(pipeline)}: stage {stage.id}: accelerate config {stage.accelerate_config} does not exist"
        )
    assert "cmd:" in capsys.readouterr().out


def test_recipe_with_an_unknown_key_is_rejected_naming_it(tmp_path):
    bad = tmp_path / "sft.yaml"
    bad.write_text((RECIPES / "skywork-r1v3" / "sft.yaml").read_text().replace("max_length:", "max_lenght:"))
    with pytest.raises(RecipeError, match="max_lenght"):
        parse_stage_config(get_stage_class("sft"), ["--config", str(bad)], source=str(bad), instantiate=False)


ACCELERATE_CONFIGS = sorted(ACCELERATE.glob("*.yaml"))


@pytest.mark.parametrize("config", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_config_loads_with_accelerate(config):
    from accelerate.commands.config.config_args import load_config_from_file

    cluster = load_config_from_file(str(config))  # accelerate's own loader: unknown keys raise
    assert cluster.num_processes >= 1 and cluster.num_machines >= 1
    if cluster.num_machines > 1:
        assert cluster.main_process_ip and cluster.main_process_port, (
            f"{config.name}: multi-node needs the main address"
        )
        assert cluster.num_processes % cluster.num_machines == 0, f"{config.name}: num_processes is the total"
    if str(cluster.distributed_type) == "DistributedType.DEEPSPEED":
        stage = cluster.deepspeed_config["zero_stage"]
        assert stage in (2, 3)
        if stage == 3:
            # the next stage (and vLLM) must find a normal HF checkpoint, not only DeepSpeed shards
            assert cluster.deepspeed_config["zero3_save_16bit_model"] is True


def test_accelerate_configs_cover_ddp_zero_and_multi_node():
    names = {p.name for p in ACCELERATE_CONFIGS}
    assert {"cpu.yaml", "cpu_ddp.yaml", "ddp.yaml", "zero2.yaml", "zero3.yaml", "zero3_offload.yaml"} <= names
    assert any(n.startswith("multi_node_") for n in names)
