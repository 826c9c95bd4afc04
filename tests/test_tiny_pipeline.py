"""The project's main job: the tiny pipeline runs end to end through the real CLI and `accelerate launch`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_pipeline_completes_then_skips_everything_on_rerun(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "skywork_rl.cli",
        "run",
        "recipes/tiny/pipeline.yaml",
        "--quiet",
        "--output-root",
        str(tmp_path / "tiny"),
    ]
    t0 = time.time()
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    elapsed = time.time() - t0
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert elapsed < 600, f"the tiny pipeline must finish in under 10 minutes on 2 cores, took {elapsed:.0f}s"
    report = json.loads((tmp_path / "tiny" / "pipeline_report.json").read_text())
    assert report["stages"] and all(s["status"] == "ran" for s in report["stages"])
    sft = next(s for s in report["stages"] if s["stage"] == "sft")
    assert sft["metrics"]["final_loss"] < sft["metrics"]["first_loss"]
    grpo = next(s for s in report["stages"] if s["stage"] == "grpo")["metrics"]
    # The SFT model knows the answer format well enough that rollouts of a prompt differ in reward:
    # GRPO (and the buffer) get a learning signal in the main job, not only in the unit tests.
    assert grpo["final_frac_reward_zero_std"] < 1.0 and grpo["final_reward"] > 0.0
    # Held-out accuracy after every training stage, on problems no training split holds. (Issue #12
    # also wants GRPO >= SFT + 5 points here; the miniature does not show it yet: README.)
    trained = [s for s in report["stages"] if s["stage"] in ("sft", "mpo", "grpo", "connector")]
    assert all("heldout/accuracy" in s["metrics"] for s in trained)
    heldout = report["heldout_accuracy"]
    assert list(heldout) == ["base", "sft", "mpo", "grpo", "connector"]
    assert heldout["sft"] > heldout["base"] + 0.2, heldout  # SFT teaches the format and some colours
    assert (tmp_path / "tiny" / "heldout_accuracy.png").stat().st_size > 0
    assert "held-out accuracy: base" in first.stdout
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert second.returncode == 0
    report = json.loads((tmp_path / "tiny" / "pipeline_report.json").read_text())
    assert all(s["status"] == "skipped" for s in report["stages"])
