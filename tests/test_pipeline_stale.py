"""Reports never mix runs: a stage left out of a run whose input that run re-made is shown `stale`
(with why), not `skipped` with its old metrics, in the closing table, pipeline_report.json and the
held-out summary; a stage built on a stale stage is stale too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from skywork_rl.runner.pipeline import run_pipeline


def _pipeline(tmp_path: Path, a_rows: int) -> Path:
    """a: rows; b: clean of a; e: clean of b; c: independent rows."""
    out = tmp_path / "out"
    stages = [
        {"id": "a", "stage": "demo-data", "config": {"demo": {"num_examples": a_rows}}},
        {"id": "b", "stage": "clean"},
        {"id": "e", "stage": "clean", "config": {"input": {"path": str(out / "b")}}},
        {"id": "c", "stage": "demo-data", "config": {"demo": {"num_examples": 3, "seed": 1}}},
    ]
    path = tmp_path / "pipe.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "output_root": str(out), "stages": stages}))
    return path


@pytest.mark.slow
def test_stages_whose_input_was_remade_by_an_only_run_are_reported_stale_without_old_metrics(
    tmp_path, capsys
):
    first = run_pipeline(_pipeline(tmp_path, a_rows=6), quiet=True)
    assert [s["status"] for s in first["stages"]] == ["ran"] * 4
    # b's old run had measured held-out accuracy: it must not reach the new report's curve
    record_path = tmp_path / "out" / "b" / "stage.json"
    record = json.loads(record_path.read_text())
    record["metrics"]["heldout/accuracy"] = 0.9
    record_path.write_text(json.dumps(record))
    capsys.readouterr()

    report = run_pipeline(_pipeline(tmp_path, a_rows=5), quiet=True, only=["a"])

    statuses = {s["id"]: s["status"] for s in report["stages"]}
    assert statuses == {"a": "ran", "b": "stale", "e": "stale", "c": "skipped"}
    b, e = report["stages"][1], report["stages"][2]
    assert b["stale_reason"] == f"its data ({tmp_path / 'out' / 'a'}) was re-made after it finished"
    assert e["stale_reason"] == "its data is stage b's, which is stale"
    assert "metrics" not in b and b["stale_metrics"]["rows_in"] == 6.0
    assert "heldout_accuracy" not in report and not (tmp_path / "out" / "heldout_accuracy.png").exists()
    saved = json.loads((tmp_path / "out" / "pipeline_report.json").read_text())
    assert [s["status"] for s in saved["stages"]] == ["ran", "stale", "stale", "skipped"]
    shown = capsys.readouterr().out
    assert "stale    (its data" in shown and "--from b" in shown
    # the plan agrees: a full run re-makes both
    plan = run_pipeline(_pipeline(tmp_path, a_rows=5), dry_run=True)
    assert [d["action"] for d in plan["decisions"]] == ["skip", "run", "run", "skip"]
