"""The preference-pairs stage: sample + verify rollouts from the tiny model, or pair given scored rollouts."""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk

from data_prep.preference_pairs import PairRulesError
from data_prep.preference_stage import PreferencePairsStage
from skywork_rl.data.schema import PREFERENCE_COLUMNS
from skywork_rl.stages.base import parse_stage_config, run_stage


def test_stage_samples_verifies_and_pairs_the_reference_trace_against_wrong_rollouts(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    out = tmp_path / "pairs"
    argv = [
        f"--input.path={synthetic_dataset_dir}",
        "--input.max_rows=6",
        f"--model.name_or_path={tiny_internvl}",
        "--rollouts.num_generations=2",
        "--rollouts.max_new_tokens=8",
        "--rollouts.chunk_size=3",
        f"--output.output_dir={out}",
    ]
    metrics = run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, argv)))
    pairs = load_from_disk(str(out))
    source = load_from_disk(str(synthetic_dataset_dir)).select(range(6))
    # The random tiny model never answers right, so every prompt pairs its verified gold trace
    # (chosen) against a sampled wrong rollout (rejected).
    assert metrics["pairs/pairs"] == len(pairs) == 6
    assert set(PREFERENCE_COLUMNS) <= set(pairs.column_names)
    assert [p[0]["content"][0]["text"] for p in pairs["chosen"]] == [
        c[0]["content"][0]["text"] for c in source["completion"]
    ]
    assert all(
        r[0]["content"][0]["text"] != c[0]["content"][0]["text"]
        for r, c in zip(pairs["rejected"], pairs["chosen"], strict=True)
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows_in"] == 6 and manifest["pairs"] == 6
    assert (out / "rollout_chunks").is_dir()


def test_stage_verifies_given_rollouts_and_counts_drops(synthetic_dataset_dir, tmp_path):
    ds = load_from_disk(str(synthetic_dataset_dir)).select(range(4))
    gold = [c[0]["content"][0]["text"] for c in ds["completion"]]
    rollouts = [[g, "<think>guess</think> \\boxed{-7}"] for g in gold]
    rollouts[3] = ["<think>x</think> \\boxed{-7}", "<think>y</think> \\boxed{-8}"]  # nothing correct
    scored_dir = tmp_path / "scored"
    ds.remove_columns("completion").add_column("completions", rollouts).save_to_disk(str(scored_dir))
    out = tmp_path / "pairs"
    argv = [f"--input.path={scored_dir}", f"--output.output_dir={out}"]
    metrics = run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, argv)))
    assert metrics["pairs/pairs"] == 3.0
    assert metrics["dropped/no_chosen_candidate"] == 1.0
    assert json.loads((out / "manifest.json").read_text())["dropped"] == {"no_chosen_candidate": 1}


def test_reward_rules_without_a_score_column_fail_before_any_generation(synthetic_dataset_dir, tmp_path):
    # No `completions`: the stage would sample. The backend does not exist, so an ImportError would
    # mean generation started before the rules were checked.
    base = [
        f"--input.path={synthetic_dataset_dir}",
        "--input.max_rows=4",
        "--model.name_or_path=x",
        "--model.backend=no.such:Backend",
        f"--output.output_dir={tmp_path / 'pairs'}",
    ]
    reward = [
        *base,
        "--pairs.criterion=reward",
        "--pairs.min_chosen_score=0.5",
        "--pairs.max_rejected_score=0",
    ]
    with pytest.raises(PairRulesError, match=r"pairs.criterion='reward'.*'rm_scores' column"):
        run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, reward)))
    hybrid = [*base, "--pairs.criterion=verified_and_reward", "--pairs.min_chosen_score=0.5"]
    with pytest.raises(PairRulesError, match=r"pairs.min_chosen_score need\(s\) reward-model scores"):
        run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, hybrid)))
    assert not (tmp_path / "pairs" / "rollout_chunks").exists()


def test_zero_pairs_fail_with_the_drop_counts_instead_of_saving_an_empty_dataset(
    synthetic_dataset_dir, tmp_path
):
    ds = load_from_disk(str(synthetic_dataset_dir)).select(range(3))
    rollouts = [["<think>x</think> \\boxed{-7}", "<think>y</think> \\boxed{-8}"]] * 3  # nothing correct
    scored_dir = tmp_path / "scored"
    ds.remove_columns("completion").add_column("completions", rollouts).save_to_disk(str(scored_dir))
    out = tmp_path / "pairs"
    argv = [f"--input.path={scored_dir}", f"--output.output_dir={out}"]
    with pytest.raises(
        PairRulesError, match=r"0 preference pairs from 3 prompts \(dropped: no_chosen_candidate=3\)"
    ):
        run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, argv)))
    assert not (out / "manifest.json").exists() and not (out / "dataset_info.json").exists()


def test_an_input_without_a_canonical_column_fails_before_any_generation(synthetic_dataset_dir, tmp_path):
    from skywork_rl.errors import DataError

    ds = load_from_disk(str(synthetic_dataset_dir)).select(range(2)).remove_columns("source")
    ds.save_to_disk(str(tmp_path / "in"))
    argv = [
        f"--input.path={tmp_path / 'in'}",
        "--model.name_or_path=x",
        "--model.backend=no.such:Backend",  # building it would be an ImportError, not this refusal
        f"--output.output_dir={tmp_path / 'pairs'}",
    ]
    with pytest.raises(DataError, match=r"preference-pairs needs column\(s\) \['source'\]"):
        run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, argv)))
    assert not (tmp_path / "pairs" / "rollout_chunks").exists()


def _rm_scores(rm_dir, rows, completions):
    from skywork_rl.rewards.reward_model import RewardModelReward

    reward = RewardModelReward(str(rm_dir), device="cpu")
    flat = reward.score(
        [r["prompt"] for r, cs in zip(rows, completions, strict=True) for _ in cs],
        [c for cs in completions for c in cs],
        [r["images"] for r, cs in zip(rows, completions, strict=True) for _ in cs],
    )
    per_row, start = [], 0
    for cs in completions:
        per_row.append(flat[start : start + len(cs)])
        start += len(cs)
    return per_row


def test_stage_scores_rollouts_with_the_reward_model_and_keeps_pairs_whose_margin_reaches_the_threshold(
    tiny_text_rm, synthetic_dataset_dir, tmp_path
):
    ds = load_from_disk(str(synthetic_dataset_dir)).select(range(6))
    rollouts = [
        [f"<think>try {i}</think> \\boxed{{{i}}}", f"<think>hmm</think> \\boxed{{{i + 1}}}", "I give up."]
        for i in range(6)
    ]
    scored_dir = tmp_path / "rollouts"
    ds.remove_columns("completion").add_column("completions", rollouts).save_to_disk(str(scored_dir))
    expected = _rm_scores(tiny_text_rm, list(ds), rollouts)
    gaps = sorted(max(s) - min(s) for s in expected)
    threshold = (gaps[2] + gaps[3]) / 2  # half the prompts have a margin above it
    out = tmp_path / "pairs"
    argv = [
        f"--input.path={scored_dir}",
        f"--reward_model.name_or_path={tiny_text_rm}",
        "--pairs.criterion=margin",
        f"--pairs.min_margin={threshold}",
        "--rollouts.chunk_size=4",
        f"--output.output_dir={out}",
    ]
    metrics = run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, argv)))
    pairs = load_from_disk(str(out))
    kept = [row for row, s in zip(ds, expected, strict=True) if max(s) - min(s) >= threshold]
    assert metrics["pairs/pairs"] == 3.0 and metrics["dropped/margin_below_min"] == 3.0
    assert [i.removesuffix("/pair0") for i in pairs["id"]] == [row["id"] for row in kept]
    for pair, row in zip(pairs, kept, strict=True):
        scores = expected[list(ds["id"]).index(row["id"])]
        assert pair["chosen_score"] == pytest.approx(max(scores), abs=1e-5)
        assert pair["chosen_score"] - pair["rejected_score"] >= threshold
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rm_failures"] == 0 and (out / "score_chunks").is_dir()


@pytest.mark.slow
def test_stage_samples_verifies_and_scores_each_chunk_with_the_reward_model(
    tiny_internvl, tiny_text_rm, synthetic_dataset_dir, tmp_path
):
    out = tmp_path / "pairs"
    argv = [
        f"--input.path={synthetic_dataset_dir}",
        "--input.max_rows=4",
        f"--model.name_or_path={tiny_internvl}",
        "--rollouts.num_generations=2",
        "--rollouts.max_new_tokens=8",
        "--rollouts.chunk_size=2",
        f"--reward_model.name_or_path={tiny_text_rm}",
        "--pairs.criterion=margin",
        f"--output.output_dir={out}",
    ]
    run_stage(PreferencePairsStage(parse_stage_config(PreferencePairsStage, argv)))
    records = [
        json.loads(line)
        for chunk in sorted((out / "rollout_chunks").glob("chunk-*.jsonl"))
        for line in chunk.open()
    ]
    assert len(records) == 4 and all(len(r["rm_scores"]) == len(r["completions"]) == 3 for r in records)
    source = load_from_disk(str(synthetic_dataset_dir)).select(range(4))
    expected = _rm_scores(tiny_text_rm, list(source), [r["completions"] for r in records])
    for record, scores in zip(records, expected, strict=True):
        assert record["rm_scores"] == pytest.approx(scores, abs=1e-5)
    assert all(p["chosen_score"] > p["rejected_score"] for p in load_from_disk(str(out)))
