"""What a person sees of `skywork-rl run`: progress bars redrawn in place, each warning once, a few
lines per stage; `stage.log` keeps everything."""

from __future__ import annotations

import io
import os
import pty
import sys
import time
from pathlib import Path

import pytest
import yaml

from skywork_rl.console import StageConsole

REPO = Path(__file__).resolve().parents[1]

_BAR = b"".join(b"\rMap: %3d%%|#   | %d/10 [00:0%d<00:00, 9.1it/s]" % (i * 10, i, i % 10) for i in range(11))
_WARNING = b"/site-packages/x/y.py:12: FutureWarning: `old` is deprecated\n  warnings.warn(msg)\n"
_METRICS = b"{'loss': '0.5742', 'grad_norm': '0.8323'}\n"


def _show(mode: str, live: bool, stages: int = 2) -> str:
    screen, seen = io.StringIO(), set()
    for _ in range(stages):  # each stage's process repeats the library's warning
        console = StageConsole(screen, mode, live=live, seen=seen)
        for data in (
            _WARNING,
            _BAR[:40],
            _BAR[40:],
            b"\n",
            _METRICS,
            b"[2026-01-01 10:00:00,1] [WARNING] x\n",
        ):
            console.feed(data)
        console.close()
    return screen.getvalue()


def test_terminal_redraws_progress_in_place_and_shows_each_warning_once():
    shown = _show("normal", live=True)
    assert shown.count("\n") == 2  # the FutureWarning and the logged warning, once each, over two stages
    assert "FutureWarning: `old` is deprecated" in shown and "warnings.warn" not in shown
    assert shown.count("\r") >= 22 and "10/10" in shown  # every refresh redrawn on one line
    assert "loss" not in shown  # metric dicts stay in stage.log


def test_log_files_get_warnings_only_and_verbose_gets_everything():
    assert _show("normal", live=False) == "  FutureWarning: `old` is deprecated\n  [WARNING] x\n"
    everything = _show("verbose", live=False, stages=1)
    assert (
        everything.encode() == _WARNING + _BAR + b"\n" + _METRICS + b"[2026-01-01 10:00:00,1] [WARNING] x\n"
    )
    assert _show("quiet", live=True) == ""


def _run_in_terminal(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, bytes]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command with the pty as its terminal
        os.execve(cmd[0], cmd, env)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


def _short_tiny_pipeline(tmp_path: Path) -> Path:
    """recipes/tiny/pipeline.yaml with fewer rows and training steps (and without the selection)."""
    spec = yaml.safe_load((REPO / "recipes" / "tiny" / "pipeline.yaml").read_text())
    spec["output_root"] = str(tmp_path / "out")
    spec["accelerate_config"] = str(REPO / "recipes" / "tiny" / spec["accelerate_config"])
    steps = {"sft": 4, "mpo": 1, "grpo": 2, "connector": 1}
    # Barely trained models give no pair over the reward margin, no prompt pool to train on and no
    # critical word to select by: those mechanisms are checked by tests/test_tiny_pipeline.py.
    spec["stages"] = [e for e in spec["stages"] if e["id"] not in ("grpo-pool", "select")]
    for entry in spec["stages"]:
        if entry["id"] == "pairs":
            entry["config"].pop("reward_model", None)
            entry["config"]["pairs"] = {"criterion": "verified"}
        if entry["id"] == "connector":
            entry["config"].pop("model", None)
        if "recipe" in entry:
            entry["recipe"] = str(REPO / "recipes" / "tiny" / entry["recipe"])
        if entry["id"] == "data":
            entry["config"]["demo"]["num_examples"] = 16
        if entry["stage"] in steps:
            n = steps[entry["stage"]]
            training = {"max_steps": n, "save_steps": n, "logging_steps": 1}
            entry["overrides"] = {**entry.get("overrides", {}), "training": training}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_tiny_pipeline_in_a_terminal_stays_under_100_lines_with_live_progress(tmp_path):
    pipeline = _short_tiny_pipeline(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    code, raw = _run_in_terminal(
        [sys.executable, "-m", "skywork_rl.cli", "run", str(pipeline)], env, timeout=900
    )
    shown = raw.decode(errors="replace")
    assert code == 0, shown[-3000:]
    stages = yaml.safe_load(pipeline.read_text())["stages"]
    assert all(f"] {s['id']} ({s['stage']}): run, new" in shown for s in stages)
    assert shown.count("\n") < 100, shown
    assert "%|" in shown and shown.count("\r") > shown.count("\n")  # bars drawn, redrawn in place
    # the full output is in the logs: the SFT log has every logged step and the bar's refreshes
    sft_log = (tmp_path / "out" / "sft" / "stage.log").read_bytes()
    assert sft_log.count(b"'loss'") == 4 and sft_log.count(b"\r") > 4
