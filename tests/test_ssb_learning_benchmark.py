"""benchmarks/ssb_learning.py at a smoke budget writes the JSON docs/SSB.md quotes and the PNG."""

from __future__ import annotations

import json

import pytest
from helpers import benchmark_module, run_benchmark


@pytest.mark.slow
def test_ssb_learning_smoke_run_writes_every_variant_and_the_plot(tmp_path):
    out = tmp_path / "bench"
    run_benchmark("ssb_learning", "--out", str(out), "--smoke", "--jobs", "1")
    result = json.loads((out / "ssb_learning.json").read_text())
    assert set(result["variants"]) == {"plain", "ssb", "dynamic_sampling"}
    assert 0.0 <= result["target_accuracy"] <= 1.15
    for variant in result["variants"].values():
        assert 0.0 <= variant["heldout_accuracy_start"] <= 1.0
        seeds = len(variant["heldout_accuracy_final"])
        assert seeds == len(variant["rollouts_to_target"]) == len(variant["heldout_curve"]) >= 1
        for curve in variant["heldout_curve"]:
            assert curve[0][0] == 0 and curve[-1][0] >= 16  # from the start model to the spent budget
        assert all(len(curve) >= 1 for curve in variant["informative_curve"])
    assert (out / "ssb_learning.png").stat().st_size > 0


@pytest.mark.slow
def test_ssb_sweep_smoke_run_writes_one_row_per_setting_with_the_buffer_metrics(tmp_path):
    out = tmp_path / "sweep"
    sweep = ("--sweep-max-age", "1", "4", "--sweep-fill-ratio", "1.0")
    run_benchmark("ssb_learning", "--out", str(out), "--smoke", "--jobs", "1", *sweep)
    result = json.loads((out / "ssb_sweep.json").read_text())
    settings = [(row["ssb_max_age"], row["ssb_max_fill_ratio"]) for row in result["sweep"]]
    assert settings == [(1, 0.5), (4, 0.5), (8, 1.0)]  # each sweep varies one knob, the other at default
    for row in result["sweep"]:
        assert len(row["heldout_accuracy_final"]) == len(row["rollouts_to_target"]) == 1
        # The trainer's own per-update metric is recorded (not a default).
        assert 0.0 <= row["effective_ratio"] <= 1.0
        assert row["effective_token_ratio"] is None or 0.0 <= row["effective_token_ratio"] <= 1.0
    assert not (out / "ssb_learning.json").exists()  # a sweep is not the variant comparison


def test_sweep_summary_groups_runs_by_setting_and_averages_the_logged_metrics():
    sweep_summary = benchmark_module("ssb_learning").sweep_summary

    def run(age, fill, seed, final, ratios):
        return {
            "ssb_max_age": age,
            "ssb_max_fill_ratio": fill,
            "seed": seed,
            "curve": [[0, 0.4], [32, final]],
            "ssb_metrics": {"ssb/effective_token_ratio": ratios},
        }

    rows = sweep_summary(
        [run(2, 0.5, 1, 0.6, [0.5]), run(2, 0.5, 0, 0.5, [0.7, 0.9]), run(8, 0.5, 0, 0.3, [0.2])],
        target=0.55,
    )
    assert [(r["ssb_max_age"], r["seeds"]) for r in rows] == [(2, [0, 1]), (8, [0])]
    assert rows[0]["heldout_accuracy_final"] == [0.5, 0.6]
    assert rows[0]["rollouts_to_target"] == [None, 32]
    assert rows[0]["effective_token_ratio"] == 0.7  # mean over every logged update of every seed
    assert rows[0]["replay_age_mean"] is None  # nothing replayed: absent, not 0


def test_versus_plain_pairs_each_variant_with_plain_by_seed_and_counts_never_as_the_budget():
    versus_plain = benchmark_module("ssb_learning").versus_plain

    variants = {
        "plain": {"seeds": [0, 1], "heldout_accuracy_final": [0.5, 0.6], "rollouts_to_target": [640, None]},
        "ssb": {"seeds": [1, 0], "heldout_accuracy_final": [0.7, 0.4], "rollouts_to_target": [320, 320]},
    }
    diff = versus_plain(variants, budget=1000)["ssb"]
    # seed 0: 0.4 - 0.5, seed 1: 0.7 - 0.6; rollouts: 320 - 640, 320 - 1000 (never reached: the budget)
    assert diff["final_accuracy_minus_plain"]["mean"] == 0.0
    assert diff["rollouts_to_target_minus_plain"]["mean"] == -500.0
    lo, hi = diff["final_accuracy_minus_plain"]["ci95"]
    assert lo == pytest.approx(-0.1) and hi == pytest.approx(0.1)
