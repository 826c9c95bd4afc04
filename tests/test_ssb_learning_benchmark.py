"""benchmarks/ssb_learning.py at a smoke budget writes the JSON the README quotes and the PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ssb_learning.py"


@pytest.mark.slow
def test_ssb_learning_smoke_run_writes_every_variant_and_the_plot(tmp_path):
    out = tmp_path / "bench"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--smoke", "--jobs", "1"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
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
