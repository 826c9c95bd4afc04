"""`benchmarks/tiny_pipeline_seeds.py` (issue #23 point 4): seed N's pipeline differs from the shipped
tiny pipeline only in its training stages' seed, seed 0 *is* the shipped pipeline (every stage has the
shipped config hash), and the summary over seeds is the gains' min, max and bootstrap mean."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers import benchmark_module

from skywork_rl.records.fingerprint import config_hash
from skywork_rl.runner.plan import plan_pipeline

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "recipes" / "tiny" / "pipeline.yaml"


def _hashes(spec_or_path, tmp_path: Path, name: str) -> dict[str, str]:
    path = spec_or_path
    if isinstance(spec_or_path, dict):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec_or_path, sort_keys=False))
    _, stages = plan_pipeline(path, str(tmp_path / "out"))
    return {s.id: config_hash(s.stage_class, s.resolved) for s in stages}


def test_seed_zero_is_the_shipped_pipeline_and_other_seeds_change_only_training_stages(tmp_path):
    script = benchmark_module("tiny_pipeline_seeds")
    shipped = _hashes(TINY, tmp_path, "shipped")
    assert _hashes(script.seeded_pipeline(0), tmp_path, "seed0") == shipped
    seed3 = _hashes(script.seeded_pipeline(3), tmp_path, "seed3")
    stages = {e["id"]: e["stage"] for e in yaml.safe_load(TINY.read_text())["stages"]}
    changed = {sid for sid in shipped if seed3[sid] != shipped[sid]}
    assert changed == {sid for sid, kind in stages.items() if kind in script.TRAINING_STAGES}
    assert changed >= {"sft", "mpo", "grpo", "grpo-pool", "connector"}


def test_summary_over_seeds_is_min_max_and_bootstrap_mean_of_the_runs_that_ran():
    script = benchmark_module("tiny_pipeline_seeds")
    runs = [
        {"status": "ran", "grpo_minus_sft": 0.10},
        {"status": "failed"},
        {"status": "ran", "grpo_minus_sft": 0.04},
        {"status": "ran", "grpo_minus_sft": 0.16},
    ]
    summary = script.summary(runs)
    assert (summary["seeds"], summary["min"], summary["max"], summary["mean"]) == (3, 0.04, 0.16, 0.1)
    low, high = summary["ci95"]
    assert 0.04 <= low < 0.1 < high <= 0.16
    assert script.summary([{"status": "failed"}]) == {"seeds": 0}


def _recipe_steps(name: str) -> int:
    return yaml.safe_load((REPO / "recipes" / "tiny" / name).read_text())["training"]["max_steps"]


def test_the_recorded_seeds_are_of_the_shipped_recipe_and_gain_on_every_seed():
    """README and RESULTS quote benchmarks/results/tiny_pipeline_seeds/sft140/: five training seeds of
    the shipped SFT and GRPO step counts (each seed's own report says how many steps ran). What they
    state is pinned: GRPO above SFT on every seed, at least 5 points on seed 0 (the CI test's seed),
    and issue #23's bar (at least 5 points on every seed) not met. A recipe change the record does not
    show fails here until the seeds are re-measured; a re-measured record that meets the bar must
    change the documents and this test."""
    import json

    folder = REPO / "benchmarks" / "results" / "tiny_pipeline_seeds" / "sft140"
    record = json.loads((folder / "tiny_pipeline_seeds.json").read_text())
    assert [run["seed"] for run in record["runs"]] == [0, 1, 2, 3, 4]
    want = {"sft": _recipe_steps("sft.yaml"), "grpo": _recipe_steps("grpo.yaml")}
    for run in record["runs"]:
        report = json.loads((folder / f"seed{run['seed']}_pipeline_report.json").read_text())
        steps = {s["id"]: s["metrics"].get("global_step") for s in report["stages"] if s["id"] in want}
        assert steps == want, run["seed"]
        assert run["status"] == "ran" and run["grpo_minus_sft"] > 0, run
    assert record["runs"][0]["grpo_minus_sft"] >= 0.05
    assert 0 < record["grpo_minus_sft"]["min"] < 0.05  # the bar, not met: RESULTS says so
