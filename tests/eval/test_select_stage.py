"""The `select` pipeline stage on a real short GRPO run of the tiny InternVL: it picks a checkpoint by
critical-token entropy and hands it on as a model the next stage loads by path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from eval.select import NoCriticalTokens, SelectionError
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = ["--select.limit=2", "--select.num_generations=2", "--select.max_new_tokens=16"]


@pytest.fixture(scope="module")
def grpo_run(
    tiny_internvl: Path, synthetic_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A 4-step GRPO run of the tiny model keeping checkpoint-2 and checkpoint-4 (its final step)."""
    out = tmp_path_factory.mktemp("grpo") / "grpo"
    stage_class = get_stage_class("grpo")
    argv = [
        "--config",
        str(REPO_ROOT / "recipes" / "tiny" / "grpo.yaml"),
        f"--model.name_or_path={tiny_internvl}",
        f"--data.train={synthetic_dataset_dir}",
        f"--training.output_dir={out}",
        "--training.max_steps=4",
        "--training.save_steps=2",
        "--training.save_total_limit=null",
        "--training.max_completion_length=16",
        "--training.report_to=[]",
    ]
    run_stage(stage_class(parse_stage_config(stage_class, argv, source="test")))
    return out


def select(run: Path, probe: Path | None, out: Path, *extra: str) -> dict[str, float]:
    stage_class = get_stage_class("select")
    argv = [f"--select.run_dir={run}", f"--output.output_dir={out}", *PROBE]
    argv += [f"--select.probe_data={probe}"] if probe else []
    return run_stage(stage_class(parse_stage_config(stage_class, [*argv, *extra], source="test")))


@pytest.mark.slow
def test_select_hands_the_highest_entropy_checkpoint_on_as_a_model(
    grpo_run, synthetic_dataset_dir, tmp_path, tiny_vocab_words
):
    from skywork_rl.families.parts import load_model_and_processor

    out = tmp_path / "select"
    # The random-weight model says R1V3's words ("wait", ...) only by accident: name its own words.
    metrics = select(grpo_run, synthetic_dataset_dir, out, f"--select.words=[{', '.join(tiny_vocab_words)}]")
    table = json.loads((out / "checkpoints.json").read_text())
    selection = json.loads((out / "selection.json").read_text())
    # the final model is checkpoint-4's weights, so it is not measured twice
    assert sorted(Path(row["checkpoint"]).name for row in table) == ["checkpoint-2", "checkpoint-4"]
    best = max(table, key=lambda row: row["entropy"])
    assert selection["chosen"] == best["checkpoint"] and metrics["select/chosen_step"] == best["step"]
    assert metrics["select/chosen_entropy"] == pytest.approx(best["entropy"]) and best["critical_tokens"] > 0
    # the folder is the chosen checkpoint's model: hard links to its files, no trainer state
    chosen = Path(selection["chosen"])
    assert "model.safetensors" in selection["model_files"] and not (out / "optimizer.pt").exists()
    for name in selection["model_files"]:
        assert not (out / name).is_symlink() and (out / name).samefile(chosen / name)
    model, processor = load_model_and_processor(str(out))
    assert model.config.model_type == "internvl" and processor is not None


def test_a_pipeline_feeds_the_selected_checkpoint_to_the_connector_stage(tmp_path):
    from skywork_rl.runner.pipeline import plan_pipeline

    pipeline = {
        "name": "chain",
        "output_root": str(tmp_path / "out"),
        "stages": [
            {"id": "model", "stage": "tiny-model"},
            {"id": "data", "stage": "demo-data"},
            {"id": "grpo", "stage": "grpo", "recipe": str(REPO_ROOT / "recipes/tiny/grpo.yaml")},
            {"id": "select", "stage": "select"},
            {
                "id": "connector",
                "stage": "connector",
                "recipe": str(REPO_ROOT / "recipes/tiny/connector.yaml"),
            },
        ],
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    _, stages = plan_pipeline(path)
    grpo, chosen, connector = stages[2], stages[3], stages[4]
    assert chosen.config["select"] == {
        "run_dir": str(grpo.output_dir),
        "probe_data": str(stages[1].output_dir),
    }
    assert connector.input_model == str(chosen.output_dir)
    assert not chosen.stage_class.distributed and chosen.stage_class.produces == "model"


@pytest.mark.slow
def test_words_the_model_never_says_fail_in_one_line_with_the_fixes(
    grpo_run, synthetic_dataset_dir, tmp_path
):
    with pytest.raises(NoCriticalTokens) as caught:
        select(grpo_run, synthetic_dataset_dir, tmp_path / "select", "--select.words=[xqzvjk]")
    message = str(caught.value)
    assert "\n" not in message and "none of the 2 candidates generated a critical word (xqzvjk)" in message
    assert "select.words" in message and "select.rule: accuracy" in message
    assert "most frequent words:" in message
    assert not (tmp_path / "select" / "selection.json").exists()


@pytest.mark.slow
def test_accuracy_rule_ranks_by_eval_reports_without_generating(grpo_run, tmp_path):
    reports = {}
    for name, accuracy in (("checkpoint-2", 0.7), ("checkpoint-4", 0.4)):
        reports[name] = tmp_path / f"{name}.json"
        reports[name].write_text(json.dumps({"average_accuracy": accuracy}))
    given = json.dumps({k: str(v) for k, v in reports.items()})
    # no probe data: nothing is generated under the accuracy rule
    metrics = select(
        grpo_run, None, tmp_path / "select", "--select.rule=accuracy", f"--select.eval_reports={given}"
    )
    assert metrics["select/chosen_step"] == 2 and metrics["select/chosen_accuracy"] == 0.7
    assert "select/chosen_entropy" not in metrics
    only_one = json.dumps({"checkpoint-2": str(reports["checkpoint-2"])})
    with pytest.raises(
        SelectionError, match="needs an eval report for every candidate; none for .*checkpoint-4"
    ):
        select(
            grpo_run, None, tmp_path / "again", "--select.rule=accuracy", f"--select.eval_reports={only_one}"
        )


@pytest.mark.slow
def test_a_new_selection_removes_the_files_of_the_previous_one(grpo_run, tmp_path):
    out = tmp_path / "select"
    out.mkdir()
    (out / "model-00002-of-00002.safetensors").write_bytes(b"stale shard of another model")
    (out / "selection.json").write_text(json.dumps({"model_files": ["model-00002-of-00002.safetensors"]}))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"average_accuracy": 0.5}))
    reports = json.dumps({"checkpoint-2": str(report), "checkpoint-4": str(report)})
    select(grpo_run, None, out, "--select.rule=accuracy", f"--select.eval_reports={reports}")
    assert not (out / "model-00002-of-00002.safetensors").exists()
    assert json.loads((out / "selection.json").read_text())["chosen"].endswith(
        "checkpoint-4"
    )  # tie: later step


@pytest.mark.slow
def test_a_checkpoint_cut_off_while_saving_is_not_a_candidate(grpo_run, tmp_path):
    from eval.select_stage import SelectOptions, candidates

    run = tmp_path / "run"
    run.mkdir()
    for step in (2, 4):
        (run / f"checkpoint-{step}").mkdir()
        for name in ("config.json", "model.safetensors"):
            (run / f"checkpoint-{step}" / name).write_bytes((grpo_run / "checkpoint-2" / name).read_bytes())
    (run / "checkpoint-4" / "model.safetensors").unlink()  # killed before its weights were written
    assert candidates(SelectOptions(run_dir=str(run))) == [(str(run / "checkpoint-2"), 2)]


def test_a_run_without_checkpoints_names_save_steps(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(SelectionError, match="no candidate model .* training.save_steps"):
        select(tmp_path / "run", None, tmp_path / "select", "--select.rule=accuracy")
