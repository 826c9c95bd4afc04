"""The paper recipes carry the papers' numbers: recipes/paper_values.yaml (what ../shared/PAPERS.md says,
as recipe keys) against each recipe and pipeline stage as its stage's parser resolves it, the pipelines'
chains (the second GRPO stage from the first, the connector from the selected checkpoint), the named
variants (they differ from their base only where they say), and recipes/README.md's table."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from skywork_rl.runner.pipeline import plan_pipeline
from skywork_rl.stages.base import get_dotted, parse_stage_config
from skywork_rl.stages.registry import get_stage_class

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PAPER = yaml.safe_load((RECIPES / "paper_values.yaml").read_text())


def _parse(stage_class: type, config_file: Path, source: str) -> Any:
    """The recipe as `skywork-rl stage NAME --config FILE --print_config` resolves it (nothing instantiated)."""
    return parse_stage_config(stage_class, ["--config", str(config_file)], source=source, instantiate=False)


@functools.cache
def _planned(pipeline: str) -> dict[str, Any]:
    """The pipeline's stages by id, planned once per pipeline for every check of it (planning writes
    nothing; its output root is a name only)."""
    _, stages = plan_pipeline(
        RECIPES / pipeline, output_root=str(Path(tempfile.gettempdir()) / "paper-values")
    )
    return {stage.id: stage for stage in stages}


def _processes(stage: Any) -> int:
    if stage.num_processes is not None:
        return int(stage.num_processes)
    return int(yaml.safe_load(stage.accelerate_config.read_text())["num_processes"])


def _resolved(check: dict[str, Any]) -> tuple[Any, int | None, str]:
    """(parsed namespace, process count, label) of a check: a recipe alone or a pipeline's stage."""
    if "recipe" in check:
        stage_class = get_stage_class(check["stage"])
        return (
            _parse(stage_class, RECIPES / check["recipe"], check["recipe"]),
            check.get("processes"),
            check["recipe"],
        )
    stage = _planned(check["pipeline"])[check["id"]]
    fd, tmp = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(stage.config, f)
        namespace = _parse(stage.stage_class, Path(tmp), f"{check['pipeline']}:{check['id']}")
    finally:
        os.unlink(tmp)
    processes = _processes(stage) if stage.launcher == "accelerate" else None
    return namespace, processes, f"{check['pipeline']} stage {check['id']}"


def _derived(name: str, ns: Any, processes: int | None) -> float:
    t = ns.training
    if name == "rollouts_per_episode":
        return t.per_device_train_batch_size * processes * t.steps_per_generation
    if name == "prompts_per_episode":
        return _derived("rollouts_per_episode", ns, processes) / t.num_generations
    if name == "gradient_steps_per_episode":
        return t.steps_per_generation / t.gradient_accumulation_steps * t.num_iterations
    if name == "batch_size":
        return t.per_device_train_batch_size * processes * t.gradient_accumulation_steps
    if name == "domains":
        return sum(1 for weight in (ns.mix.proportions or {}).values() if weight > 0)
    raise KeyError(name)


def _same(key: str, found: Any, expected: Any) -> bool:
    if key.endswith("trainable"):
        return sorted(found) == sorted(expected)
    if isinstance(expected, float):
        return found == pytest.approx(expected)
    if isinstance(expected, list) and expected and isinstance(expected[0], float):
        return list(found) == pytest.approx(expected)
    return found == expected


def _check_id(check: dict[str, Any]) -> str:
    return check.get("recipe") or f"{check['pipeline']}:{check['id']}"


@pytest.mark.parametrize("check", PAPER["checks"], ids=_check_id)
def test_paper_recipe_resolves_to_the_papers_values(check):
    namespace, processes, label = _resolved(check)
    wrong = []
    for name in check["values"]:
        values = PAPER["values"][name]
        for key, (expected, says) in values.get("keys", {}).items():
            found = get_dotted(namespace, key)
            if not _same(key, found, expected):
                wrong.append(f"{key} = {found!r}, the paper's is {expected!r} ({says!r})")
        for key, (expected, says) in values.get("derived", {}).items():
            assert processes is not None, f"{label}: `processes` is needed for {key}"
            found = _derived(key, namespace, processes)
            if found != expected:
                wrong.append(
                    f"{key} = {found} on {processes} processes, the paper's is {expected} ({says!r})"
                )
    assert not wrong, f"{label}:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("pipeline", sorted(PAPER["chains"]))
def test_pipeline_stages_start_from_the_stages_the_paper_chains(pipeline):
    stages = _planned(pipeline)
    chains = PAPER["chains"][pipeline]
    for kind, links in chains.items():
        for stage_id, source in links.items():
            source_id, _, suffix = source.partition("/")
            expected = str(stages[source_id].output_dir) + (f"/{suffix}" if suffix else "")
            found = stages[stage_id].input_model if kind == "model" else stages[stage_id].input_data
            assert found == expected, (
                f"{pipeline}: stage {stage_id} {kind} is {found}, expected {source}'s output"
            )


def _flat(namespace: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(tree: Any, prefix: str) -> None:
        for key, value in tree.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(namespace.as_dict(), "")
    out.pop("config", None)
    return out


@pytest.mark.parametrize("variant", PAPER["variants"], ids=lambda v: v["recipe"])
def test_named_variant_differs_from_its_base_only_where_it_says(variant):
    stage_class = get_stage_class(variant["stage"])
    base = _flat(_parse(stage_class, RECIPES / variant["base"], variant["base"]))
    changed = _flat(_parse(stage_class, RECIPES / variant["recipe"], variant["recipe"]))
    differing = sorted(k for k in base.keys() | changed.keys() if base.get(k) != changed.get(k))
    patterns = variant["differs_in"]
    unexplained = [k for k in differing if not any(fnmatch.fnmatch(k, p) for p in patterns)]
    unused = [p for p in patterns if not any(fnmatch.fnmatch(k, p) for k in differing)]
    assert not unexplained, f"{variant['recipe']} also differs from {variant['base']} in {unexplained}"
    assert not unused, f"{variant['recipe']} does not differ from {variant['base']} in {unused}"


_ROW = re.compile(r"^\|(?P<stage>[^|]*)\|\s*`(?P<key>[^`]+)`\s*\|(?P<value>[^|]*)\|(?P<source>[^|]*)\|\s*$")


def _readme_rows() -> list[dict[str, str]]:
    rows = []
    for line in (RECIPES / "README.md").read_text().splitlines():
        match = _ROW.match(line)
        if match:
            rows.append({k: v.strip() for k, v in match.groupdict().items()})
    return rows


def test_recipes_readme_table_lists_every_paper_value_as_paper():
    rows = _readme_rows()
    missing = []
    for name, values in PAPER["values"].items():
        for key, (expected, _) in {**values.get("keys", {}), **values.get("derived", {})}.items():
            found = [r for r in rows if f"`{name}`" in r["stage"] and r["key"] == key]
            ok = [
                r
                for r in found
                if r["source"].startswith("paper") and _same(key, yaml.safe_load(r["value"]), expected)
            ]
            if not ok:
                missing.append(f"{name} {key} = {expected!r} ({'wrong row' if found else 'no row'})")
    assert not missing, "recipes/README.md's table lacks:\n  " + "\n  ".join(missing)
    unlabelled = [f"{r['stage']} {r['key']}" for r in rows if not r["source"].startswith(("paper", "ours"))]
    assert not unlabelled, f"rows whose source is neither paper nor ours: {unlabelled}"
