"""MPO stage: TRL DPOTrainer's multi-loss with images, each loss term logged."""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk
from helpers import CPU_TRAINING, stage_argv

from data_prep.preference_pairs import PairRules, build_preference_dataset
from skywork_rl.data.schema import PREFERENCE_COLUMNS
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.mpo import MPO_LOSS_WEIGHTS, MPOStage


@pytest.fixture(scope="module")
def pairs_dir(synthetic_dataset_dir, tmp_path_factory):
    """Pairs built by data_prep from hand-made scored rollouts: the gold trace vs a wrong-answer trace."""
    ds = load_from_disk(str(synthetic_dataset_dir)).select(range(8))
    gold = [c[0]["content"][0]["text"] for c in ds["completion"]]
    wrong = [g.replace(f"\\boxed{{{s}}}", "\\boxed{-1}") for g, s in zip(gold, ds["solution"], strict=True)]
    scored = ds.remove_columns("completion")
    scored = scored.add_column("completions", [[g, w] for g, w in zip(gold, wrong, strict=True)])
    scored = scored.add_column("correct", [[True, False]] * len(ds))
    pairs, stats = build_preference_dataset(scored, PairRules(criterion="verified"))
    assert stats.pairs == 8
    path = tmp_path_factory.mktemp("pairs") / "pairs"
    pairs.save_to_disk(str(path))
    return path


def _argv(model, data, out, extra=()):
    training = dict(max_steps=2, per_device_train_batch_size=2, learning_rate="1e-3", logging_steps=1)
    training.update(save_strategy="steps", save_steps=2, gradient_checkpointing=False)
    return stage_argv(model, data, out, *extra, **training, **CPU_TRAINING, max_length=512)


def test_mpo_runs_two_steps_with_images_and_logs_each_loss_term(tiny_internvl, pairs_dir, tmp_path):
    assert set(PREFERENCE_COLUMNS) <= set(load_from_disk(str(pairs_dir)).column_names)
    out = tmp_path / "mpo"
    config = parse_stage_config(MPOStage, _argv(tiny_internvl, pairs_dir, out))
    assert config.training.loss_type == ["sigmoid", "bco_pair", "sft"]
    metrics = run_stage(MPOStage(config))
    assert metrics["global_step"] == 2

    steps = [
        h
        for h in json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
        if "loss" in h
    ]
    assert len(steps) == 2
    for entry in steps:
        terms = [entry[f"mpo/loss_{t}"] for t in ("sigmoid", "bco_pair", "sft")]
        assert all(t > 0 for t in terms), entry
        # The logged terms recombine into the loss TRL optimised (Trainer rounds the logged loss).
        combined = sum(w * t for w, t in zip(MPO_LOSS_WEIGHTS, terms, strict=True))
        assert combined == pytest.approx(entry["loss"], abs=2e-3), entry
    # at step 1 policy == reference, so both preference terms sit at their starting values
    first = steps[0]
    assert first["mpo/loss_sigmoid"] == pytest.approx(0.6931, abs=1e-3)
    assert first["mpo/loss_bco_pair"] == pytest.approx(2 * 0.6931, abs=1e-3)
    assert "final_mpo/loss_sft" in metrics
    assert (out / "model.safetensors").exists() and (out / "processor_config.json").exists()


def test_mpo_rejects_a_dataset_without_pairs(tiny_internvl, synthetic_dataset_dir, tmp_path):
    config = parse_stage_config(MPOStage, _argv(tiny_internvl, synthetic_dataset_dir, tmp_path / "o"))
    with pytest.raises(ValueError, match=r"data.train .*'chosen'"):
        run_stage(MPOStage(config))
