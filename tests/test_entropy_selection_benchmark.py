"""benchmarks/entropy_selection.py at a smoke budget writes its JSON and PNG (the schema, not the result)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "entropy_selection.py"


@pytest.mark.slow
def test_entropy_selection_smoke_run_writes_checkpoints_and_the_plot(tmp_path):
    out = tmp_path / "bench"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--smoke"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = json.loads((out / "entropy_selection.json").read_text())
    assert [p["step"] for p in result["checkpoints"]][:2] == [0, 1]
    for point in result["checkpoints"]:
        assert 0.0 <= point["heldout_accuracy"] <= 1.0 and point["critical_count"] >= 0
    assert result["spearman"] is None or -1.0 <= result["spearman"] <= 1.0
    assert (out / "entropy_selection.png").stat().st_size > 0
