"""The paper pipelines' external datasets as local stand-ins in each source's own layout
(`data_prep/standins.py`), read by the real `load-data` stage with each pipeline's own mapping config
and by eval's benchmark loaders."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from data_prep.standins import MATHV360K_PICKED, MATHV360K_UNLISTED, stage_standins, standin_for
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.data.schema import prompt_text
from skywork_rl.errors import DataError
from skywork_rl.runner.plan import plan_pipeline, set_dotted
from skywork_rl.stages.base import parse_stage_config, run_stage

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_PIPELINES = ("skywork-r1v3", "skywork-r1v3-8b", "skywork-r1v2")


def paper_load_stages(tmp_path: Path) -> dict[str, dict]:
    """Every `load-data` stage of the three paper pipelines, by source, with its config as planned."""
    found: dict[str, dict] = {}
    for name in PAPER_PIPELINES:
        _, stages = plan_pipeline(REPO_ROOT / "recipes" / name / "pipeline.yaml", str(tmp_path / name))
        for stage in stages:
            if stage.stage == "load-data":
                key = stage.config["source"]["mapping"]
                found.setdefault(key, copy.deepcopy(stage.config))
    return found


def run_load_data(config: dict, subs: dict, out: Path) -> tuple[dict, object]:
    config = copy.deepcopy(config)
    for key, value in subs.items():
        set_dotted(config, key, value)
    config["output"]["output_dir"] = str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recipe = out.parent / f"{out.name}.yaml"
    recipe.write_text(yaml.safe_dump(config))
    from skywork_rl.stages.registry import get_stage_class

    stage_class = get_stage_class("load-data")
    metrics = run_stage(stage_class(parse_stage_config(stage_class, ["--config", str(recipe)])))
    return metrics, load_stage_dataset(str(out))


def image_parts(row: dict) -> int:
    return sum(p["type"] == "image" for m in row["prompt"] for p in m["content"])


@pytest.mark.slow  # slow lane: the fast lane keeps this module covered by test_mathv360k_stand_in_covers_every_domain_the_connector_pick_stage_names
def test_every_paper_load_data_source_has_a_stand_in_the_stage_reads_as_the_real_source(tmp_path):
    stages = paper_load_stages(tmp_path / "plan")
    assert sorted(stages) == ["mathv360k", "mmk12", "scienceqa", "sciq"]
    loaded = {}
    for mapping, config in stages.items():
        subs = standin_for(config["input"], config["source"], tmp_path / "standins" / mapping, 24, seed=0)
        assert subs["input.path"].startswith(str(tmp_path / "standins"))
        metrics, rows = run_load_data(config, subs, tmp_path / "out" / mapping)
        assert metrics["rows"] == 24, mapping  # no row dropped: every column mapped, every image read
        assert {"prompt", "images", "solution", "source", "id"} <= set(rows.column_names)
        assert all(len(r["images"]) == image_parts(r) for r in rows)
        loaded[mapping] = rows
    science = loaded["scienceqa"]
    with_image = [len(r["images"]) for r in science]
    assert 0 < with_image.count(0) < len(science) and set(with_image) == {
        0,
        1,
    }  # text-only and pictured items
    assert all(s in "ABCDE" and len(s) == 1 for s in science["solution"])  # the int8 index became a letter
    assert "\nChoices:\nA. " in prompt_text(science[0]["prompt"])
    assert any(prompt_text(r["prompt"]).startswith("Context: ") for r in science)  # the hint
    assert all(len(r["images"]) == 0 for r in loaded["sciq"])  # SciQ is text only
    assert all(len(r["images"]) == 1 for r in loaded["mmk12"])
    mmk12 = loaded["mmk12"]["solution"]
    assert any(s.isdigit() for s in mmk12) and any(s in "ABCD" for s in mmk12)  # values and letters
    domains = set(loaded["mathv360k"]["source"])
    assert domains == {f"mathv360k/{d}" for d in MATHV360K_PICKED + MATHV360K_UNLISTED}  # 24 rows: all 21


def test_mathv360k_stand_in_covers_every_domain_the_connector_pick_stage_names(tmp_path):
    _, stages = plan_pipeline(REPO_ROOT / "recipes/skywork-r1v3/pipeline.yaml", str(tmp_path / "plan"))
    by_id = {s.id: s for s in stages}
    named = set(by_id["connector-pick"].config["mix"]["proportions"])
    config = by_id["connector-source"].config
    subs = standin_for(config["input"], config["source"], tmp_path / "standins", 8, seed=1)  # one per domain
    _, rows = run_load_data(config, subs, tmp_path / "out")
    domains = set(rows["source"])
    assert named < domains and domains - named == {f"mathv360k/{d}" for d in MATHV360K_UNLISTED}


def test_stand_ins_are_deterministic_by_seed(tmp_path):
    config = {
        "input": {"path": "derek-thomas/ScienceQA", "split": "train"},
        "source": {"mapping": "scienceqa"},
    }
    files = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        folder = Path(standin_for(config["input"], config["source"], tmp_path / name, 8, seed)["input.path"])
        files.append((folder / "data" / "train-00000-of-00001.parquet").read_bytes())
    assert files[0] == files[1] and files[0] != files[2]


def test_a_source_without_a_stand_in_is_refused_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"no stand-in for the source input.path='someone/private-set'"):
        standin_for({"path": "someone/private-set"}, {"mapping": "geometry3k"}, tmp_path, 4, 0)
    assert stage_standins("sft", {"data": {"train": "x"}}, tmp_path, 4, 0) == {}
    with pytest.raises(DataError, match=r"benchmark\(s\) \['mathverse'\]"):
        stage_standins(
            "benchmark-data", {"benchmarks": {"sources": {"mathverse": "AI4Math/MathVerse"}}}, tmp_path, 4, 0
        )


def test_benchmark_stand_ins_read_as_eval_reads_the_real_benchmarks(tmp_path):
    from eval.benchmarks import load_items

    config = {"benchmarks": {"sources": {"mmmu": "MMMU/MMMU", "mathvista": "AI4Math/MathVista"}}}
    subs = stage_standins("benchmark-data", config, tmp_path, 12, seed=0)
    mmmu = load_items("mmmu", subs["benchmarks.sources.mmmu"])
    # the validation split only (each subject folder also holds dev items, as on the hub)
    assert len(mmmu) == 12 and all(item.id.startswith("validation_") for item in mmmu)
    assert {item.subject for item in mmmu} == {"Math", "Physics", "Art_Theory"}
    pictures = {len(item.row["images"]) for item in mmmu}
    assert {1, 2} <= pictures  # items with several images
    kinds = {item.meta["question_type"] for item in mmmu}
    assert kinds == {"multiple-choice", "open"}
    vista = load_items("mathvista", subs["benchmarks.sources.mathvista"])
    assert len(vista) == 12 and all(len(item.row["images"]) == 1 for item in vista)  # testmini only
    assert {item.meta["question_type"] for item in vista} == {"multi_choice", "free_form"}
