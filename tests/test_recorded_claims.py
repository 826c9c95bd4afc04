"""The papers' four claims as measured on the `half_color` miniature (benchmarks/results/paper_claims/,
issue 23 point 2) are re-checkable.

Each claim is a paired difference over 5 seeds (one start, one held-out set, one budget) with its 95 %
bootstrap interval; `claim_verdict` reads the interval, and the verdicts RESULTS.md, README and the
docs state are pinned here, so a re-recorded run that changes one must change the text too. A short
prefix of every recorded run, re-run at the settings its JSON records, gives the recorded first
points exactly (deterministic on CPU: fixed seeds, one thread).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import benchmark_module, recorded_argv, rerun_ssb_prefix

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
CLAIMS = BENCHMARKS / "results" / "paper_claims"
sys.path.insert(0, str(BENCHMARKS))

from miniature import claim_verdict, mean_interval  # noqa: E402

# folder under paper_claims/ -> the benchmark that wrote it
RECORDS = {
    "ssb_learning_lr1e-4": "ssb_learning",
    "ssb_learning_lr5e-4": "ssb_learning",
    "entropy_selection": "entropy_selection",
    "r1v3_ablations": "r1v3_ablations",
}


def _recorded(folder: str) -> dict[str, Any]:
    return json.loads((CLAIMS / folder / f"{RECORDS[folder]}.json").read_text())


def _intervals() -> dict[str, list[float]]:
    """Every claim's paired interval, by the name RESULTS.md gives it."""
    out = {}
    for lr in ("1e-4", "5e-4"):
        versus = _recorded(f"ssb_learning_lr{lr}")["versus_plain"]
        for variant in ("ssb", "dynamic_sampling"):
            out[f"{variant} - plain, final, lr {lr}"] = versus[variant]["final_accuracy_minus_plain"]["ci95"]
    entropy = _recorded("entropy_selection")
    for rule in ("last", "train_reward"):
        out[f"entropy pick - {rule} pick"] = entropy["entropy_minus"][rule]["ci95"]
    out["spearman of entropy and accuracy"] = entropy["spearman_over_seeds"]["ci95"]
    out["partial spearman of entropy and accuracy, step held out"] = entropy["partial_spearman_over_seeds"][
        "ci95"
    ]
    ablations = _recorded("r1v3_ablations")["differences"]
    out["grpo - sft on the start's verified traces"] = ablations["grpo - sft_on_rl_traces"]["ci95"]
    out["connector only - connector and llm, after grpo"] = ablations[
        "grpo+connector_only - grpo+connector_and_llm"
    ]["ci95"]
    out["connector only after grpo - grpo"] = ablations["grpo+connector_only - grpo"]["ci95"]
    return out


# The verdicts RESULTS.md ("The papers' claims on the `half_color` miniature") states, one table row
# each; a claim is the paper's effect, so "reversed" means the miniature measured the opposite.
# Claims of no effect (R1V3: dynamic sampling gave no validation gain): an interval can only contradict them.
NULL_CLAIMS = {"dynamic_sampling - plain, final, lr 1e-4", "dynamic_sampling - plain, final, lr 5e-4"}
DOCUMENTED = {
    "ssb - plain, final, lr 1e-4": "reproduced",
    "dynamic_sampling - plain, final, lr 1e-4": "contradicted",
    "ssb - plain, final, lr 5e-4": "not resolved",
    "dynamic_sampling - plain, final, lr 5e-4": "not contradicted",
    "entropy pick - last pick": "not resolved",
    "entropy pick - train_reward pick": "not resolved",
    "spearman of entropy and accuracy": "reversed",
    "partial spearman of entropy and accuracy, step held out": "reversed",
    "grpo - sft on the start's verified traces": "reversed",
    "connector only - connector and llm, after grpo": "reversed",
    "connector only after grpo - grpo": "reproduced",
}


def test_every_recorded_claim_has_five_seeds_the_baselines_and_its_plot():
    for folder, name in RECORDS.items():
        recorded = _recorded(folder)
        assert recorded["setup"]["task"] == "half_color", folder
        assert recorded["setup"]["seeds"] >= 5, folder
        assert 0.0 <= recorded["memorization_baseline"] < recorded["chance_accuracy"] + 0.1, folder
        assert (CLAIMS / folder / f"{name}.png").stat().st_size > 0, folder
    # one start, one held-out set: every record measured the same start on the same split
    starts = {
        *(
            v["heldout_accuracy_start"]
            for lr in ("1e-4", "5e-4")
            for v in _recorded(f"ssb_learning_lr{lr}")["variants"].values()
        ),
        *(seed[0]["heldout_accuracy"] for seed in _recorded("entropy_selection")["checkpoints"]),
        *_recorded("r1v3_ablations")["arms"]["start"]["heldout_accuracy"],
    }
    assert len(starts) == 1, starts


def test_the_documented_verdicts_are_the_recorded_intervals():
    intervals = _intervals()
    assert set(intervals) == set(DOCUMENTED)
    for claim, interval in intervals.items():
        assert claim_verdict(interval, null=claim in NULL_CLAIMS) == DOCUMENTED[claim], (claim, interval)
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in (BENCHMARKS / "RESULTS.md").read_text().splitlines()
        if line.startswith("| ")
    }
    for claim, verdict in DOCUMENTED.items():
        assert f"**{verdict}**" in rows[claim], claim


def test_claim_verdict_needs_the_whole_interval_on_one_side_of_zero():
    assert claim_verdict([0.01, 0.2]) == "reproduced"
    assert claim_verdict([-0.2, -0.01]) == "reversed"
    assert claim_verdict([-0.05, 0.2]) == "not resolved"
    assert claim_verdict([0.0, 0.2]) == "not resolved"  # an interval touching zero proves nothing
    assert claim_verdict([-0.05, 0.2], null=True) == "not contradicted"
    assert claim_verdict([0.01, 0.2], null=True) == "contradicted"
    with pytest.raises(ValueError, match="fewer than two seeds"):
        claim_verdict(None)


@pytest.mark.slow
def test_claim_records_rerun_reproduce_their_recorded_first_points(tmp_path):
    """One start for all: ssb_learning's prefix builds it; entropy_selection's first two checkpoints and
    r1v3_ablations' sampled traces and start are then re-measured from it, as recorded. The scripts
    are imported here, as the module `sys.modules` holds (`rerun_ssb_prefix` does the same for
    ssb_learning): a process pool pickles its worker by name, which fails when another test has
    imported the script again since."""
    recorded = _recorded("ssb_learning_lr1e-4")
    batch = recorded["setup"]["prompts_per_step"] * recorded["setup"]["num_generations"]
    ssb_out = tmp_path / "ssb"
    rerun_ssb_prefix(recorded, ssb_out, "plain", updates=4)
    entropy_selection, r1v3_ablations = (
        benchmark_module(name) for name in ("entropy_selection", "r1v3_ablations")
    )
    start = ssb_out / "start"

    recorded = _recorded("entropy_selection")
    setup = recorded["setup"]
    updates = setup["eval_every"]  # the first checkpoint after the start
    out = tmp_path / "entropy"
    argv = recorded_argv(setup, out, start=start, seeds=1, rollouts=updates * batch, jobs=1)
    assert entropy_selection.main(argv) == 0
    rerun = json.loads((out / "entropy_selection.json").read_text())
    assert rerun["checkpoints"][0] == recorded["checkpoints"][0][:2]

    recorded = _recorded("r1v3_ablations")
    out = tmp_path / "r1v3"
    assert r1v3_ablations.main(recorded_argv(recorded["setup"], out, start=start, seeds=1, steps=1)) == 0
    rerun = json.loads((out / "r1v3_ablations.json").read_text())
    assert rerun["sampled_traces"][0] == recorded["sampled_traces"][0]
    assert rerun["arms"]["start"]["heldout_accuracy"][0] == recorded["arms"]["start"]["heldout_accuracy"][0]


def test_the_longer_plain_run_extends_the_recorded_claim_run_and_misses_the_target_as_documented():
    """benchmarks/results/ssb_learning_half_color_lr5e-4_3840/: plain GRPO at lr 5e-4 with twice the
    claims' budget, from the same start. Its first 1,920 rollouts are the claims' plain runs (whose
    prefix the slow test re-runs), so the longer curve extends a re-checked one; what README and
    RESULTS say of its end (below the start, under memorisation + 15 points) is pinned."""
    longer = json.loads(
        (BENCHMARKS / "results" / "ssb_learning_half_color_lr5e-4_3840" / "ssb_learning.json").read_text()
    )
    claim = _recorded("ssb_learning_lr5e-4")["variants"]["plain"]
    plain = longer["variants"]["plain"]
    assert longer["setup"]["rollouts"] == 2 * _recorded("ssb_learning_lr5e-4")["setup"]["rollouts"]
    assert plain["seeds"] == claim["seeds"] and len(plain["heldout_curve"]) == 5
    for mine, recorded in zip(plain["heldout_curve"], claim["heldout_curve"], strict=True):
        assert mine[: len(recorded)] == recorded
    mean, (low, high) = plain["final_accuracy"]["mean"], plain["final_accuracy"]["ci95"]
    assert mean < plain["heldout_accuracy_start"] and mean < longer["memorization_baseline"] + 0.15
    stated = f"{mean:.3f} [{low:.3f}, {high:.3f}]"
    assert stated in (ROOT / "README.md").read_text() and stated in (BENCHMARKS / "RESULTS.md").read_text()


SFT300 = BENCHMARKS / "results" / "ssb_learning_half_color_sft300"


def _gain_over_start(record: dict[str, Any], first: int = 0) -> dict[str, Any]:
    """Plain GRPO's final minus start held-out accuracy, per seed from the `first`-th run on, with
    its bootstrap interval."""
    plain = record["variants"]["plain"]
    finals = plain["heldout_accuracy_final"][first:]
    return mean_interval([final - plain["heldout_accuracy_start"] for final in finals])


def test_plain_grpo_from_the_300_step_start_ends_above_its_start_and_15_points_above_memorisation():
    """benchmarks/results/ssb_learning_half_color_sft300/ (issue 23 point 1): from an earlier SFT start
    (300 steps) at lr 1e-4, plain GRPO's final held-out accuracy is above its start over 10 seeds (the
    interval of final - start excludes zero) and at least 15 points above memorisation. The start's
    own sampling noise is measured (20 sampling seeds; seed 0 is the benchmark's measurement), so
    the gain is not a low draw of the start. The record that keeps its start (SFT 400 steps, the
    claims' start) fails the same gain check, and the documents state the recorded numbers."""
    record = json.loads((SFT300 / "ssb_learning.json").read_text())
    setup, plain = record["setup"], record["variants"]["plain"]
    assert (setup["task"], setup["sft_steps"], setup["learning_rate"]) == ("half_color", 300, 1e-4)
    assert len(plain["seeds"]) >= 10 and (SFT300 / "ssb_learning.png").stat().st_size > 0
    assert benchmark_module("ssb_learning").learned(plain, record["memorization_baseline"], margin=0.15)
    gain = _gain_over_start(record)
    assert claim_verdict(gain["ci95"]) == "reproduced", gain
    untuned = _gain_over_start(record, first=1)
    assert claim_verdict(untuned["ci95"]) == "reproduced", untuned  # seeds 1-9: not used to pick the setting
    noise = json.loads((SFT300 / "start_sampling_noise.json").read_text())
    assert noise["accuracy"][0] == plain["heldout_accuracy_start"] and len(noise["accuracy"]) == 20
    assert plain["final_accuracy"]["ci95"][0] > noise["mean"]  # above the start's mean over sampling seeds
    kept = json.loads((BENCHMARKS / "results" / "ssb_learning_half_color" / "ssb_learning.json").read_text())
    assert claim_verdict(_gain_over_start(kept)["ci95"]) != "reproduced"  # a run that keeps its start fails
    (low, high), mean = gain["ci95"], gain["mean"]
    stated = f"{100 * mean:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"
    final = plain["final_accuracy"]
    final_stated = f"{final['mean']:.3f} [{final['ci95'][0]:.3f}, {final['ci95'][1]:.3f}]"
    for document in (ROOT / "README.md", BENCHMARKS / "RESULTS.md"):
        text = document.read_text()
        assert stated in text and final_stated in text, (document.name, stated, final_stated)


@pytest.mark.slow
def test_the_300_step_start_record_reruns_its_recorded_start_and_first_updates(tmp_path):
    """The SFT-300 record's start (rebuilt from nothing) and its first updates' informative shares
    equal the recorded ones exactly."""
    record = json.loads((SFT300 / "ssb_learning.json").read_text())
    rerun_ssb_prefix(record, tmp_path, "plain", updates=4)
