"""`benchmarks/tiny_pipeline_seeds.py` (issue #23 point 4): seed N's pipeline differs from the shipped
tiny pipeline only in its training stages' seed, seed 0 *is* the shipped pipeline (every stage has the
shipped config hash), and the summary over seeds is the gains' min, max and bootstrap mean."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from helpers import benchmark_module

from skywork_rl.records.fingerprint import config_hash
from skywork_rl.runner.plan import plan_pipeline

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "recipes" / "tiny" / "pipeline.yaml"


def _write(spec: dict, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _hashes(spec_or_path, tmp_path: Path, name: str) -> dict[str, str]:
    path = _write(spec_or_path, tmp_path, name) if isinstance(spec_or_path, dict) else spec_or_path
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


def _shipped_training_sections(tmp_path: Path) -> dict[str, dict]:
    """What each training stage of the shipped tiny pipeline runs with: the ``training`` section the
    runner writes to its ``recipe.yaml`` (recipe file < pipeline config < overrides), without the
    run-only values (as `tiny_pipeline_seeds.training_sections` records them)."""
    script = benchmark_module("tiny_pipeline_seeds")
    _, stages = plan_pipeline(TINY, str(tmp_path / "out"))
    return {
        s.id: {k: v for k, v in s.config["training"].items() if k not in script.RUN_ONLY}
        for s in stages
        if s.stage in script.TRAINING_STAGES
    }


def _steps(report: dict, shipped: dict) -> dict[str, int]:
    """The optimizer steps each training stage of a pipeline report ran."""
    return {s["id"]: s["metrics"].get("global_step") for s in report["stages"] if s["id"] in shipped}


def test_the_recorded_seeds_ran_the_shipped_recipes_and_gain_at_least_5_points_on_every_seed(tmp_path):
    """README and RESULTS quote benchmarks/results/tiny_pipeline_seeds/grpo120_warmup/: five training
    seeds, each training stage with the ``training`` section it ran with (read from its run folder's
    ``recipe.yaml``). Any change to a tiny training recipe (a learning rate, a step count, warmup) fails
    here until the seeds are re-measured. What the documents state is pinned: issue #23's bar, GRPO at
    least 5 points above SFT on every seed, and so on seed 0, the CI test's seed."""
    folder = REPO / "benchmarks" / "results" / "tiny_pipeline_seeds" / "grpo120_warmup"
    record = json.loads((folder / "tiny_pipeline_seeds.json").read_text())
    assert [run["seed"] for run in record["runs"]] == [0, 1, 2, 3, 4]
    shipped = _shipped_training_sections(tmp_path)
    for run in record["runs"]:
        assert run["training"] == shipped, run["seed"]
        report = json.loads((folder / f"seed{run['seed']}_pipeline_report.json").read_text())
        assert _steps(report, shipped) == {sid: shipped[sid]["max_steps"] for sid in shipped}, run["seed"]
        assert run["status"] == "ran" and run["heldout_accuracy"] == report["heldout_accuracy"], run["seed"]
        gain = round(report["heldout_accuracy"]["grpo"] - report["heldout_accuracy"]["sft"], 4)
        assert run["grpo_minus_sft"] == gain >= 0.05, run
    assert record["grpo_minus_sft"]["min"] == min(run["grpo_minus_sft"] for run in record["runs"])


def test_the_committed_tiny_pipeline_report_is_the_recorded_seed_zero(tmp_path):
    """README quotes benchmarks/results/tiny_pipeline/ (a run from nothing of the shipped pipeline, with
    its cost) for seed 0's held-out chain: it ran the shipped step counts and equals seed 0 of the
    5-seed record, the CPU run being deterministic."""
    folder = REPO / "benchmarks" / "results"
    report = json.loads((folder / "tiny_pipeline" / "pipeline_report.json").read_text())
    seed0 = json.loads(
        (folder / "tiny_pipeline_seeds" / "grpo120_warmup" / "seed0_pipeline_report.json").read_text()
    )
    assert report["heldout_accuracy"] == seed0["heldout_accuracy"]
    assert all(s["status"] == "ran" for s in report["stages"])
    shipped = _shipped_training_sections(tmp_path)
    assert _steps(report, shipped) == {sid: section["max_steps"] for sid, section in shipped.items()}
    run = json.loads((folder / "tiny_pipeline" / "run.json").read_text())
    assert run["exit_code"] == 0 and run["cpu_seconds"] < 1200


def test_training_sections_read_each_training_stage_recipe_without_its_run_only_values(tmp_path):
    script = benchmark_module("tiny_pipeline_seeds")
    spec = script.seeded_pipeline(3)
    _, stages = plan_pipeline(_write(spec, tmp_path, "seeded"), str(tmp_path / "run"))
    for stage in stages:
        stage.output_dir.mkdir(parents=True)
        stage.recipe_file.write_text(yaml.safe_dump(stage.config))
    sections = script.training_sections(tmp_path / "run", spec)
    assert set(sections) == {"sft", "mpo", "grpo", "grpo-pool", "connector"}
    assert sections == _shipped_training_sections(tmp_path)  # seed and output_dir are all that differ
