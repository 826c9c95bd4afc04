"""The `benchmark-data` stage writes the decontamination files a paper pipeline's dedup stages read,
from the benchmarks in their official layouts (here: the stand-ins of `data_prep/standins.py`)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from data_prep.standins import stage_standins
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.data.schema import prompt_text
from skywork_rl.errors import DataError
from skywork_rl.runner.plan import plan_pipeline, set_dotted
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_planned(stage, subs: dict, recipes: Path) -> dict:
    """Run a planned pipeline stage in this process with the stand-ins' config values."""
    config = copy.deepcopy(stage.config)
    for key, value in subs.items():
        set_dotted(config, key, value)
    recipes.mkdir(parents=True, exist_ok=True)
    recipe = recipes / f"{stage.id}.yaml"
    recipe.write_text(yaml.safe_dump(config))
    return run_stage(stage.stage_class(parse_stage_config(stage.stage_class, ["--config", str(recipe)])))


def test_r1v2_dedup_drops_benchmark_copies_using_the_files_its_own_benchmark_stage_writes(tmp_path):
    """The R1V2 pipeline's first stages as planned (benchmarks, source, clean, dedup) on stand-ins; two
    training rows copying a MathVista and an MMMU question are the only rows decontamination drops."""
    _, stages = plan_pipeline(REPO_ROOT / "recipes/skywork-r1v2/pipeline.yaml", str(tmp_path / "out"))
    by_id = {s.id: s for s in stages}
    bench = by_id["benchmarks"]
    subs = stage_standins("benchmark-data", bench.config, tmp_path / "standins", 12, seed=0)
    metrics = run_planned(bench, subs, tmp_path / "recipes")
    assert metrics == {"questions/mmmu": 12.0, "questions/mathvista": 12.0, "questions": 24.0}
    mmmu = [
        json.loads(line) for line in (bench.output_dir / "mmmu_validation.jsonl").read_text().splitlines()
    ]
    vista = [
        json.loads(line) for line in (bench.output_dir / "mathvista_testmini.jsonl").read_text().splitlines()
    ]
    assert all(r["id"].startswith("validation_") for r in mmmu)  # not the dev items beside them
    assert all("<image" not in r["question"] for r in mmmu)  # picture tags are not words a copy shares
    assert all("Hint:" not in r["question"] for r in vista)  # the bare question, not the query's hint
    # plant two copies in the MMK12 stand-in, then run the pipeline's own source/clean/dedup stages
    source = by_id["source"]
    subs = stage_standins("load-data", source.config, tmp_path / "standins", 16, seed=0)
    planted = _plant(Path(subs["input.path"]), [vista[0]["question"], mmmu[0]["question"]])
    assert run_planned(source, subs, tmp_path / "recipes")["rows"] == 18
    assert run_planned(by_id["clean"], {}, tmp_path / "recipes")["rows"] == 18
    metrics = run_planned(by_id["dedup"], {}, tmp_path / "recipes")
    assert metrics["dropped/contaminated"] == 2 and metrics["rows"] == 16
    kept = {prompt_text(r["prompt"]) for r in load_stage_dataset(str(by_id["dedup"].output_dir))}
    assert not any(text in kept_text for text in planted for kept_text in kept)


def _plant(folder: Path, questions: list[str]) -> list[str]:
    """Append rows copying `questions` (wrapped in words of their own) to the MMK12 stand-in's parquet."""
    from datasets import Dataset, concatenate_datasets

    path = folder / "data" / "train-00000-of-00001.parquet"
    data = Dataset.from_parquet(str(path))
    extra = data.select(range(len(questions))).map(
        lambda row, i: {"id": f"planted-{i}", "question": f"Solve it: {questions[i]} Explain."},
        with_indices=True,
    )
    concatenate_datasets([data, extra]).to_parquet(str(path))
    return questions


def test_mathv360k_prompts_sharing_mathvista_hint_words_are_not_contaminated(tmp_path):
    """MathVista's query and MathV360K's prompts share the same answer-format hint; the files hold the
    bare question, so the connector data survives decontamination."""
    _, stages = plan_pipeline(REPO_ROOT / "recipes/skywork-r1v3/pipeline.yaml", str(tmp_path / "out"))
    by_id = {s.id: s for s in stages}
    bench = by_id["benchmarks"]
    run_planned(bench, stage_standins("benchmark-data", bench.config, tmp_path / "sb", 8, 0), tmp_path / "r")
    source = by_id["connector-source"]
    run_planned(source, stage_standins("load-data", source.config, tmp_path / "sm", 21, 0), tmp_path / "r")
    run_planned(by_id["connector-clean"], {}, tmp_path / "r")
    metrics = run_planned(by_id["connector-dedup"], {}, tmp_path / "r")
    assert metrics["rows"] == 21 and metrics.get("dropped/contaminated", 0) == 0


def test_unknown_benchmark_or_hub_id_offline_is_refused_naming_the_key(tmp_path):
    stage_class = get_stage_class("benchmark-data")

    def run(sources: dict) -> None:
        argv = ["--benchmarks.sources", json.dumps(sources), "--output.output_dir", str(tmp_path / "o")]
        run_stage(stage_class(parse_stage_config(stage_class, argv)))

    with pytest.raises(ValueError, match=r"unknown benchmark\(s\) \['mmlu'\]"):
        run({"mmlu": "cais/mmlu"})
    with pytest.raises(DataError, match=r"benchmarks.sources.mmmu: the hub is offline"):
        run({"mmmu": "MMMU/MMMU"})  # tests run with HF_HUB_OFFLINE=1 (conftest)
    with pytest.raises(DataError, match=r"benchmarks.sources.mathvista: 'MathVista/x' is neither a local"):
        run({"mathvista": "MathVista/x"})


def test_hub_reading_streams_only_the_split_and_its_question_and_id_columns(tmp_path):
    """`read_hub_questions` on MathVista's layout (its stand-in folder, read as the hub's files are)."""
    from eval.benchmark_data import read_hub_questions

    folder = stage_standins("benchmark-data", {"benchmarks": {"sources": {"mathvista": "x"}}}, tmp_path, 5, 0)
    records = read_hub_questions(folder["benchmarks.sources.mathvista"], [None], "testmini", "pid")
    assert [sorted(r) for r in records] == [["pid", "question"]] * 5  # not the test split's 2 items
    assert [r["pid"] for r in records] == ["1", "2", "3", "4", "5"]
