"""`benchmarks/families_pipeline.py` runs the real tiny pipeline per family: its copy differs from
`recipes/tiny/pipeline.yaml` only in the tiny model's `arch` (with `--short`, also the training step
counts), and it resolves and validates as a pipeline from any folder."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from helpers import benchmark_module

from skywork_rl.miniature.tiny import TINY_ARCHS
from skywork_rl.runner.pipeline import run_pipeline

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "recipes" / "tiny" / "pipeline.yaml"


def _script():
    return benchmark_module("families_pipeline")


@pytest.mark.parametrize("short", [False, True], ids=["recipe-steps", "short"])
def test_family_pipeline_is_the_tiny_pipeline_with_only_arch_changed(short):
    script = _script()
    original = yaml.safe_load(TINY.read_text())
    steps = script.SHORT_STEPS if short else None
    for arch in TINY_ARCHS:
        spec = script.family_pipeline(arch, steps)
        assert [(e["id"], e["stage"]) for e in spec["stages"]] == [
            (e["id"], e["stage"]) for e in original["stages"]
        ]
        expected = copy.deepcopy(original["stages"])
        for mine, theirs in zip(spec["stages"], expected, strict=True):
            if "recipe" in theirs:
                assert Path(mine["recipe"]) == (TINY.parent / theirs["recipe"]).resolve()
                theirs["recipe"] = mine["recipe"]
            if theirs.get("id") == "model":
                assert mine["config"]["tiny"].pop("arch") == arch
                theirs["config"]["tiny"].pop("arch", None)
            if short and theirs["stage"] in script.SHORT_STEPS:
                n = script.SHORT_STEPS[theirs["stage"]]
                assert mine.pop("overrides") == {"training": {"max_steps": n, "save_steps": n}}
            assert mine == theirs
        assert {k: v for k, v in spec.items() if k not in ("stages", "accelerate_config")} == {
            k: v for k, v in original.items() if k not in ("stages", "accelerate_config")
        }
        assert Path(spec["accelerate_config"]) == (TINY.parent / original["accelerate_config"]).resolve()


def test_family_pipeline_resolves_from_another_folder(tmp_path, capsys):
    script = _script()
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(script.family_pipeline("paligemma", script.SHORT_STEPS)))
    # parses and validates every stage's config; verbose prints each one
    plan = run_pipeline(path, dry_run=True, verbose=True, output_root=str(tmp_path / "run"))
    assert plan["stages"] == [e["id"] for e in yaml.safe_load(TINY.read_text())["stages"]]
    assert "arch: paligemma" in capsys.readouterr().out


def test_a_run_of_some_families_adds_to_the_earlier_results_with_the_same_steps(tmp_path):
    script = _script()
    path = tmp_path / "families_pipeline.json"
    earlier = [{"arch": "internvl", "status": "ran"}, {"arch": "gemma3", "status": "failed"}]
    path.write_text(json.dumps({"steps": None, "families": earlier}))
    assert script.earlier_results(path, None, keep_out=["gemma3"]) == earlier[:1]  # re-run: replaced
    assert script.earlier_results(path, script.SHORT_STEPS, keep_out=[]) == []  # other steps: not mixed
    assert script.earlier_results(tmp_path / "none.json", None, keep_out=[]) == []
