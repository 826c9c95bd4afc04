"""The learning benchmarks' shared start (benchmarks/miniature.py) is reused only when nothing it was
built from changed: a stale start would make every number measured from it wrong."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from datasets import load_from_disk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import miniature  # noqa: E402


def _args(out: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    miniature.add_arguments(parser)
    args = parser.parse_args([])
    miniature.smoke(args)
    args.out = out
    return args


def _record(start: Path) -> dict:
    return json.loads((start / "stage.json").read_text())


@pytest.mark.slow
def test_the_start_is_reused_only_while_its_sft_steps_and_train_rows_are_unchanged(tmp_path):
    args = _args(tmp_path)
    start = miniature.build_start(args)
    first, written = _record(start), (start / "stage.json").stat().st_mtime_ns
    assert first["status"] == "complete" and first["config"]["training"]["max_steps"] == args.sft_steps

    assert miniature.build_start(args) == start
    assert (start / "stage.json").stat().st_mtime_ns == written  # unchanged: not trained again

    args.sft_steps += 1
    miniature.build_start(args)
    assert _record(start)["config"]["training"]["max_steps"] == args.sft_steps  # rebuilt, not skipped

    args.train_rows += 4
    miniature.build_start(args)
    assert _record(start)["config"]["data"]["train"].endswith(f"train-{args.train_rows}")
    assert len(load_from_disk(str(tmp_path / f"train-{args.train_rows}"))) == args.train_rows
