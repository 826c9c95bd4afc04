"""Pipeline runner: chaining, fingerprints (skip / re-run / resume and why), stage selection,
stop-on-failure, recipe errors that name the place."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from skywork_rl.runner.pipeline import PipelineError, plan_pipeline, run_pipeline
from skywork_rl.stages.base import COMPLETE_MARKER, RecipeError, parse_stage_config
from skywork_rl.stages.registry import get_stage_class

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _data_pipeline(tmp_path: Path, a_rows: int = 6, extra: tuple[dict, ...] = ()) -> Path:
    """a: rendered rows; b: `clean` of a (chained); c: independent rows; then the `extra` entries."""
    stages = [
        {"id": "a", "stage": "demo-data", "config": {"demo": {"num_examples": a_rows}}},
        {"id": "b", "stage": "clean"},
        {"id": "c", "stage": "demo-data", "config": {"demo": {"num_examples": 3, "seed": 1}}},
        *extra,
    ]
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "output_root": str(tmp_path / "out"), "stages": stages}))
    return path


def _rows(sid: str, n: int, seed: int) -> dict:
    return {"id": sid, "stage": "demo-data", "config": {"demo": {"num_examples": n, "seed": seed}}}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """The output folder of one finished run of `_data_pipeline` (copied by the tests that need one)."""
    root = tmp_path_factory.mktemp("finished")
    report = run_pipeline(_data_pipeline(root, extra=(_rows("d", 2, 2),)), quiet=True)
    assert [s["status"] for s in report["stages"]] == ["ran"] * 4
    return root / "out"


def _copy_finished(finished_run: Path, tmp_path: Path) -> Path:
    """A finished run under tmp_path: outputs are recognised wherever they are (paths are not hashed)."""
    shutil.copytree(finished_run, tmp_path / "out")
    return tmp_path / "out"


def _statuses(report: dict) -> list[str]:
    return [s["status"] for s in report["stages"]]


def _ended(tmp_path: Path, sid: str) -> str:
    return json.loads((tmp_path / "out" / sid / "stage.json").read_text())["ended_at"]


def test_pipeline_runs_stages_and_writes_provenance(finished_run):
    record = json.loads((finished_run / "a" / "stage.json").read_text())
    assert record["stage"] == "demo-data" and record["status"] == "complete"
    assert record["metrics"]["rows"] == 6.0
    assert record["config"]["demo"]["output_dir"] == str(finished_run / "a")
    assert {"started_at", "ended_at", "duration_s", "input_model", "pid"} <= set(record)
    assert set(record["fingerprint"]) == {"config", "inputs", "processes", "output"}
    # b read a: its input fingerprint is a's finished run
    b = json.loads((finished_run / "b" / "stage.json").read_text())
    assert b["fingerprint"]["inputs"]["data"] == f"stage:{record['fingerprint']['output']}"
    report = json.loads((finished_run / "pipeline_report.json").read_text())
    assert [s["reason"] for s in report["stages"]] == ["new"] * 4


def test_unchanged_rerun_skips_every_stage(finished_run, tmp_path):
    out = _copy_finished(finished_run, tmp_path)
    mtime = (out / "a" / "stage.json").stat().st_mtime_ns
    report = run_pipeline(_data_pipeline(tmp_path, extra=(_rows("d", 2, 2),)), quiet=True)
    assert _statuses(report) == ["skipped"] * 4
    assert [s["reason"] for s in report["stages"]] == ["unchanged"] * 4
    assert (out / "a" / "stage.json").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_changed_override_reruns_its_stage_and_every_stage_reading_it(finished_run, tmp_path):
    _copy_finished(finished_run, tmp_path)
    first = {sid: _ended(tmp_path, sid) for sid in "abc"}
    report = run_pipeline(_data_pipeline(tmp_path, a_rows=5), quiet=True)
    assert _statuses(report) == ["ran", "ran", "skipped"]
    assert report["stages"][0]["reason"] == "config changed (demo.num_examples: 6 -> 5)"
    assert report["stages"][1]["reason"] == "input changed (data: stage a runs first)"
    assert report["stages"][0]["metrics"]["rows"] == 5.0 and report["stages"][1]["metrics"]["rows_in"] == 5.0
    assert _ended(tmp_path, "c") == first["c"]


def test_interrupted_stage_with_unchanged_fingerprint_resumes_without_force(finished_run, tmp_path):
    out = _copy_finished(finished_run, tmp_path)
    (out / "c" / COMPLETE_MARKER).unlink()  # as if c had been killed after its last write
    report = run_pipeline(_data_pipeline(tmp_path), dry_run=True)
    c = report["decisions"][2]
    assert (c["action"], c["reason"], c["fresh"]) == ("resume", "incomplete (no completion marker)", False)


def test_dry_run_says_skip_run_or_resume_and_why(finished_run, tmp_path, capsys):
    out = _copy_finished(finished_run, tmp_path)
    record = out / "d" / "stage.json"
    record.write_text(record.read_text().replace('"status": "complete"', '"status": "running"'))
    (out / "d" / COMPLETE_MARKER).unlink()
    run_pipeline(_data_pipeline(tmp_path, a_rows=4, extra=(_rows("d", 2, 2), _rows("e", 2, 3))), dry_run=True)
    shown = capsys.readouterr().out
    assert "[1/5] a (demo-data): run, config changed (demo.num_examples: 6 -> 4)" in shown
    assert "[2/5] b (clean): run, input changed (data: stage a runs first)" in shown
    assert "[3/5] c (demo-data): skip, unchanged" in shown
    assert "[4/5] d (demo-data): resume, incomplete (interrupted)" in shown
    assert "[5/5] e (demo-data): run, new" in shown
    assert "stage demo-data --config" in shown and "--force" in shown
    assert not (out / "e").exists()
    record = out / "c" / "stage.json"
    record.write_text(record.read_text().replace('"processes": 1', '"processes": 2'))
    run_pipeline(_data_pipeline(tmp_path), dry_run=True)
    assert "[3/3] c (demo-data): run, processes changed (2 -> 1)" in capsys.readouterr().out


@pytest.mark.slow
def test_from_and_only_select_stages_and_read_earlier_outputs_from_disk(finished_run, tmp_path):
    pipe = _data_pipeline(tmp_path)
    with pytest.raises(RecipeError, match="reads its data from stage a .* not selected and not finished"):
        run_pipeline(pipe, quiet=True, only=["b"])
    _copy_finished(finished_run, tmp_path)
    report = run_pipeline(pipe, quiet=True, force=True, start="b")
    assert [(s["action"], s["status"]) for s in report["stages"]] == [
        ("not selected", "skipped"),
        ("run", "ran"),
        ("run", "ran"),
    ]
    report = run_pipeline(pipe, dry_run=True, only=["c"], force=True)
    assert [s["action"] for s in report["decisions"]] == ["not selected", "not selected", "run"]
    with pytest.raises(RecipeError, match="no stage 'zz' in this pipeline"):
        run_pipeline(pipe, dry_run=True, start="zz")


@pytest.mark.slow
def test_failed_stage_stops_the_chain_and_shows_the_end_of_its_log(tmp_path, capsys):
    pipe = _write(
        tmp_path / "pipe.yaml",
        f"""
        output_root: {tmp_path / "out"}
        stages:
          - id: data
            stage: demo-data
            config: {{demo: {{num_examples: 2, tasks: [no_such_task]}}}}
          - id: never
            stage: demo-data
        """,
    )
    with pytest.raises(PipelineError) as info:
        run_pipeline(pipe, quiet=True)
    log = tmp_path / "out" / "data" / "stage.log"
    assert "stage data (demo-data) failed" in str(info.value) and str(log) in str(info.value)
    assert "no_such_task" in capsys.readouterr().out  # the end of the log, shown by the runner
    assert not (tmp_path / "out" / "never").exists()
    assert not (tmp_path / "out" / "data" / COMPLETE_MARKER).exists()
    assert json.loads((tmp_path / "out" / "data" / "stage.json").read_text())["status"] == "failed"


def test_pipeline_chains_previous_outputs_unless_named(tmp_path):
    (tmp_path / "sft.yaml").write_text("model: {name_or_path: elsewhere}\ntraining: {bf16: false}\n")
    pipe = _write(
        tmp_path / "pipe.yaml",
        f"""
        output_root: {tmp_path / "out"}
        stages:
          - {{id: m, stage: tiny-model}}
          - {{id: d, stage: demo-data}}
          - {{id: s1, stage: sft, recipe: sft.yaml}}
          - {{id: s2, stage: sft, recipe: sft.yaml, overrides: {{model: {{name_or_path: "${{stages.m.output_dir}}"}}}}}}
        """,
    )
    _, stages = plan_pipeline(pipe)
    s1, s2 = stages[2], stages[3]
    assert s1.input_model == str(tmp_path / "out" / "m") and s1.input_data == str(tmp_path / "out" / "d")
    assert s2.input_model == str(tmp_path / "out" / "m")  # named explicitly, s1 is not fed in
    assert s2.config["training"]["output_dir"] == str(tmp_path / "out" / "s2")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("stages: []", "'stages' must be a non-empty list"),
        ("stages:\n  - {stage: no-such-stage}", "(no-such-stage).stage: unknown stage 'no-such-stage'"),
        ("stages:\n  - {stage: sft, recipe: missing.yaml}", "no such file"),
        ("stages:\n  - {stage: sft, colour: red}", "unknown key(s) ['colour']"),
        ("stages:\n  - {id: a, stage: demo-data}\n  - {id: a, stage: demo-data}", "duplicate stage id 'a'"),
        ("stages: [unclosed", "not valid YAML"),
        (
            "acelerate_config: x.yaml\nnum_proceses: 2\nstages:\n  - {stage: demo-data}",
            "unknown top-level key(s) ['acelerate_config', 'num_proceses']; allowed: ['name', 'output_root', "
            "'accelerate_config', 'num_processes', 'stages']",
        ),
    ],
)
def test_malformed_pipeline_errors_name_file_and_key(tmp_path, body, expected):
    pipe = tmp_path / "bad.yaml"
    pipe.write_text(body)
    with pytest.raises(RecipeError) as info:
        plan_pipeline(pipe)
    assert str(pipe) in str(info.value) and expected in str(info.value)


def test_stage_recipe_type_error_names_file_key_and_expectation(tmp_path):
    recipe = _write(tmp_path / "sft.yaml", "training:\n  learning_rate: fast\n")
    with pytest.raises(RecipeError) as info:
        parse_stage_config(
            get_stage_class("sft"), ["--config", str(recipe)], source=str(recipe), instantiate=False
        )
    text = str(info.value)
    assert str(recipe) in text and "training.learning_rate" in text and "float" in text


def test_stage_recipe_unknown_key_is_rejected(tmp_path):
    recipe = _write(tmp_path / "sft.yaml", "training:\n  learnin_rate: 0.1\n")
    with pytest.raises(RecipeError, match="learnin_rate"):
        parse_stage_config(
            get_stage_class("sft"), ["--config", str(recipe)], source=str(recipe), instantiate=False
        )


def test_tiny_pipeline_recipe_resolves():
    _, stages = plan_pipeline(REPO / "recipes" / "tiny" / "pipeline.yaml")
    assert stages[0].stage == "tiny-model" and any(s.stage == "sft" for s in stages)


def test_force_reruns_completed_stages(finished_run, tmp_path):
    _copy_finished(finished_run, tmp_path)
    report = run_pipeline(_data_pipeline(tmp_path), dry_run=True, force=True)
    assert [(s["action"], s["reason"], s["fresh"]) for s in report["decisions"]] == [
        ("run", "forced (--force)", True)
    ] * 3


@pytest.mark.slow
def test_changed_training_override_retrains_from_scratch(tmp_path, tiny_internvl, synthetic_dataset_dir):
    def pipeline(steps: int) -> Path:
        recipe = {
            "model": {"name_or_path": str(tiny_internvl)},
            "data": {"train": str(synthetic_dataset_dir)},
            "training": {
                "max_steps": steps,
                "bf16": False,
                "use_cpu": True,
                "report_to": [],
                "save_steps": 1,
            },
        }
        (tmp_path / "sft.yaml").write_text(yaml.safe_dump(recipe))
        spec = {
            "output_root": str(tmp_path / "out"),
            "stages": [{"id": "s", "stage": "sft", "recipe": "sft.yaml", "launcher": "python"}],
        }
        (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(spec))
        return tmp_path / "pipe.yaml"

    out = tmp_path / "out" / "s"
    run_pipeline(pipeline(2), quiet=True)
    saved_first = (out / "checkpoint-1" / "trainer_state.json").stat().st_mtime_ns
    report = run_pipeline(pipeline(1), quiet=True)
    assert report["stages"][0]["reason"] == "config changed (training.max_steps: 2 -> 1)"
    # a fresh run: the old run's checkpoints are gone (resume: auto would have found checkpoint-2 and
    # trained 0 steps), step 1 was trained and saved again
    assert not (out / "checkpoint-2").exists()
    assert (out / "checkpoint-1" / "trainer_state.json").stat().st_mtime_ns > saved_first
    record = json.loads((out / "stage.json").read_text())
    assert record["status"] == "complete" and record["metrics"]["global_step"] == 1
    assert (
        record["argv"][-1] == "--force"
        and record["resolved_config"]["training"]["resume_from_checkpoint"] is None
    )
