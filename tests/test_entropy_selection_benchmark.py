"""benchmarks/entropy_selection.py at a smoke budget writes its JSON and PNG (the schema, not the result)."""

from __future__ import annotations

import json

import pytest
from helpers import benchmark_module, run_benchmark


@pytest.mark.slow
def test_entropy_selection_smoke_run_writes_checkpoints_and_the_plot(tmp_path):
    out = tmp_path / "bench"
    run_benchmark("entropy_selection", "--out", str(out), "--smoke")
    result = json.loads((out / "entropy_selection.json").read_text())
    assert [p["step"] for p in result["checkpoints"][0]][:2] == [0, 1]
    for point in result["checkpoints"][0]:
        assert 0.0 <= point["heldout_accuracy"] <= 1.0 and point["critical_count"] >= 0
    assert all(rho is None or -1.0 <= rho <= 1.0 for rho in result["spearman"])
    assert set(result["picks"]) == {"entropy", "last", "train_reward"}
    assert (out / "entropy_selection.png").stat().st_size > 0


def test_partial_spearman_removes_what_training_time_explains():
    entropy_selection = benchmark_module("entropy_selection")
    steps = [1, 2, 3, 4, 5, 6]
    accuracy = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # rises with time
    entropy = [1.0, 1.5, 1.2, 1.8, 1.6, 2.0]  # rises with time too, with wiggles accuracy lacks
    assert entropy_selection.spearman(entropy, accuracy) > 0.8
    partial = entropy_selection.partial_spearman(entropy, accuracy, steps)
    assert partial is None or abs(partial) < 0.2  # accuracy is time alone: nothing is left
    wiggle = [0.1, 0.3, 0.2, 0.4, 0.35, 0.6]  # accuracy with entropy's wiggles
    assert entropy_selection.partial_spearman(entropy, wiggle, steps) > 0.5


def test_picks_compare_the_entropy_last_and_reward_choices():
    entropy_selection = benchmark_module("entropy_selection")

    def point(step, accuracy, entropy, reward):
        return {
            "step": step,
            "heldout_accuracy": accuracy,
            "critical_entropy": entropy,
            "train_reward": reward,
        }

    points = [
        point(0, 0.3, 2.5, None),
        point(10, 0.5, 2.0, 0.4),
        point(20, 0.7, 1.0, 0.9),
        point(30, 0.6, 1.5, 0.6),
    ]
    # the start (step 0) is no candidate even with the highest entropy
    assert entropy_selection.picks(points) == {"entropy": 0.5, "last": 0.6, "train_reward": 0.7}


def test_summary_pairs_the_entropy_pick_with_the_last_and_reward_picks_seed_by_seed():
    """The verdict is the paired difference (same run, same checkpoints), not two means side by side."""
    entropy_selection = benchmark_module("entropy_selection")

    def run(accuracies, entropies, rewards):
        points = [{"step": 0, "heldout_accuracy": 0.3, "critical_entropy": 9.0, "train_reward": None}]
        for i, values in enumerate(zip(accuracies, entropies, rewards, strict=True), start=1):
            accuracy, entropy, reward = values
            points.append(
                {
                    "step": 10 * i,
                    "heldout_accuracy": accuracy,
                    "critical_entropy": entropy,
                    "train_reward": reward,
                }
            )
        return points

    runs = [
        run(
            [0.5, 0.7, 0.6, 0.4], [2.0, 1.0, 1.5, 0.5], [0.1, 0.2, 0.3, 0.9]
        ),  # entropy 0.5, last 0.4, reward 0.4
        run(
            [0.2, 0.4, 0.8, 0.6], [0.1, 3.0, 1.0, 2.0], [0.5, 0.1, 0.2, 0.3]
        ),  # entropy 0.4, last 0.6, reward 0.2
    ]
    summary = entropy_selection.summarize(runs)
    assert summary["picks"]["entropy"]["heldout_accuracy"] == [0.5, 0.4]
    assert summary["entropy_minus"]["last"]["mean"] == pytest.approx((0.1 - 0.2) / 2)
    assert summary["entropy_minus"]["train_reward"]["mean"] == pytest.approx((0.1 + 0.2) / 2)
    low, high = summary["entropy_minus"]["last"]["ci95"]
    assert low == pytest.approx(-0.2) and high == pytest.approx(0.1)  # two seeds: the two values bound it
    assert summary["spearman_over_seeds"]["seeds_defined"] == 2
