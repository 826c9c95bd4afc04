"""A pipeline refuses, before anything runs, a stage that reads a local file no earlier stage makes and
that is not there (`skywork_rl.runner.plan.check_made_inputs`); the paper pipelines make their own
decontamination files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skywork_rl.runner.pipeline import plan_pipeline, run_pipeline
from skywork_rl.stages.base import RecipeError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PAPER_PIPELINES = ("skywork-r1v3", "skywork-r1v3-8b", "skywork-r1v2")


@pytest.mark.parametrize(
    "name",
    # slow lane for two of the three: the fast lane keeps the check itself covered by skywork-r1v3's
    [
        name if name == "skywork-r1v3" else pytest.param(name, marks=pytest.mark.slow)
        for name in PAPER_PIPELINES
    ],
)
def test_paper_pipeline_dedup_stages_read_benchmark_files_an_earlier_stage_makes(name, tmp_path):
    pipeline = RECIPES / name / "pipeline.yaml"
    _, stages = plan_pipeline(pipeline, output_root=str(tmp_path / "out"))
    dedups = [s for s in stages if s.stage == "dedup"]
    assert dedups, f"{name}: no dedup stage"
    for n, stage in enumerate(stages):
        if stage.stage != "dedup":
            continue
        files = stage.config["decontaminate"]["benchmarks"]
        assert [Path(f).name for f in files] == ["mmmu_validation.jsonl", "mathvista_testmini.jsonl"]
        makers = {Path(f).parent for f in files}
        earlier = {s.output_dir: s.stage for s in stages[:n]}
        assert all(earlier.get(folder) == "benchmark-data" for folder in makers), (
            f"{name}: stage {stage.id} reads {files}, not made by an earlier benchmark-data stage"
        )
    # the runner's --dry-run checks it (nothing under tmp_path exists yet)
    run_pipeline(pipeline, dry_run=True, output_root=str(tmp_path / "out"))


def _pipeline(tmp_path: Path, stages: list[dict]) -> Path:
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "output_root": str(tmp_path / "out"), "stages": stages}))
    return path


DATA = {"id": "rows", "stage": "demo-data", "config": {"demo": {"num_examples": 4}}}


def test_dry_run_refuses_a_dedup_benchmark_file_that_nothing_makes(tmp_path):
    missing = str(tmp_path / "bench" / "mmmu_validation.jsonl")
    dedup = {"id": "dedup", "stage": "dedup", "config": {"decontaminate": {"benchmarks": [missing]}}}
    pipeline = _pipeline(tmp_path, [DATA, dedup])
    with pytest.raises(
        RecipeError,
        match=r"stage dedup: decontaminate.benchmarks names .*mmmu_validation.jsonl: no such file or folder, "
        r"and no earlier stage of this pipeline makes it; a `benchmark-data` stage",
    ):
        run_pipeline(pipeline, dry_run=True)
    assert not (tmp_path / "out").exists()  # refused before anything ran
    # a file the user provides is fine
    (tmp_path / "bench").mkdir()
    Path(missing).write_text('{"question": "What is the capital of Peru?"}\n')
    run_pipeline(pipeline, dry_run=True)


def test_dry_run_refuses_a_benchmark_file_made_by_a_later_stage(tmp_path):
    benchmarks = {"id": "benchmarks", "stage": "benchmark-data"}
    later = str(tmp_path / "out" / "benchmarks" / "mmmu_validation.jsonl")  # a later stage's folder, by path
    dedup = {"id": "dedup", "stage": "dedup", "config": {"decontaminate": {"benchmarks": [later]}}}
    with pytest.raises(RecipeError, match=r"which stage benchmarks makes, but benchmarks runs after dedup"):
        run_pipeline(_pipeline(tmp_path, [DATA, dedup, benchmarks]), dry_run=True)
    made = "${stages.benchmarks.output_dir}/mmmu_validation.jsonl"
    dedup = {"id": "dedup", "stage": "dedup", "config": {"decontaminate": {"benchmarks": [made]}}}
    run_pipeline(_pipeline(tmp_path, [benchmarks, DATA, dedup]), dry_run=True)


@pytest.mark.slow
def test_a_stage_reading_files_of_a_re_made_stage_runs_again(tmp_path):
    """Changing the benchmark sources re-makes the benchmark files, so the dedup that reads them is
    decided `run` (it would otherwise be skipped as unchanged: its chained input, the rows, is)."""
    from data_prep.standins import stage_standins

    def pipeline(seed: int) -> Path:
        sources = {"sources": {"mmmu": "MMMU/MMMU", "mathvista": "AI4Math/MathVista"}}
        subs = stage_standins("benchmark-data", {"benchmarks": sources}, tmp_path / f"s{seed}", 4, seed)
        local = {key.rpartition(".")[2]: value for key, value in subs.items()}
        made = ["${stages.benchmarks.output_dir}/mmmu_validation.jsonl"]
        return _pipeline(
            tmp_path,
            [
                {"id": "benchmarks", "stage": "benchmark-data", "config": {"benchmarks": {"sources": local}}},
                DATA,
                {"id": "dedup", "stage": "dedup", "config": {"decontaminate": {"benchmarks": made}}},
            ],
        )

    report = run_pipeline(pipeline(0), quiet=True)
    assert [s["status"] for s in report["stages"]] == ["ran"] * 3
    again = run_pipeline(pipeline(0), dry_run=True)
    assert [d["action"] for d in again["decisions"]] == ["skip"] * 3
    changed = run_pipeline(pipeline(1), dry_run=True)
    assert [d["action"] for d in changed["decisions"]] == ["run", "skip", "run"]
    assert (
        changed["decisions"][2]["reason"]
        == "input changed (decontaminate.benchmarks: stage benchmarks runs first)"
    )
