"""benchmarks/r1v3_ablations.py at a smoke budget writes every arm and the plot (the schema, not the result)."""

from __future__ import annotations

import json

import pytest
from helpers import run_benchmark


@pytest.mark.slow
def test_r1v3_ablations_smoke_run_writes_every_arm_and_the_plot(tmp_path):
    out = tmp_path / "bench"
    run_benchmark("r1v3_ablations", "--out", str(out), "--smoke")
    result = json.loads((out / "r1v3_ablations.json").read_text())
    assert list(result["arms"]) == [
        "start",
        "sft_on_rl_traces",
        "grpo",
        "grpo+connector_only",
        "grpo+connector_and_llm",
    ]
    for arm in result["arms"].values():
        assert len(arm["heldout_accuracy"]) == 1 and all(0.0 <= a <= 1.0 for a in arm["heldout_accuracy"])
    arms = {name: arm["heldout_accuracy"][0] for name, arm in result["arms"].items()}
    assert result["differences"]["grpo - sft_on_rl_traces"]["mean"] == pytest.approx(
        arms["grpo"] - arms["sft_on_rl_traces"], abs=1e-4
    )
    assert result["differences"]["grpo+connector_only - grpo+connector_and_llm"]["mean"] == pytest.approx(
        arms["grpo+connector_only"] - arms["grpo+connector_and_llm"], abs=1e-4
    )
    assert (out / "r1v3_ablations.png").stat().st_size > 0
