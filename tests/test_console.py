"""What a person sees of `skywork-rl run`: progress bars redrawn in place, each warning once, a few
lines per stage; `stage.log` keeps everything. The whole tiny pipeline in a pseudo-terminal is
checked in tests/test_tiny_pipeline.py (its one run happens there, through `_run_in_terminal`)."""

from __future__ import annotations

import io
import os
import pty
import time
from pathlib import Path

import pytest

from skywork_rl.runner.console import StageConsole

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


def test_long_warning_wraps_at_words_in_a_terminal_and_is_never_cut():
    words = " ".join(f"word{i}" for i in range(40))
    path = "/a/very/long/path/" + "x" * 60 + "/model.safetensors"
    screen = io.StringIO()
    console = StageConsole(screen, "normal", live=True, seen=set())
    console._width = 50
    console.feed(f"UserWarning: {words} {path}\n".encode())
    console.close()
    lines = screen.getvalue().splitlines()
    assert len(lines) > 1
    assert " ".join(line.strip() for line in lines) == f"UserWarning: {words} {path}"  # every word whole
    assert all(len(line) <= 50 for line in lines if path not in line)
    assert all(line.startswith("    ") for line in lines[1:])  # continuation lines indented


def _tiny_model_output(tmp_path: Path, **env: str) -> str:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "skywork_rl.cli", "make-tiny-model", "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", **env},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_deepspeed_cpu_notice_is_hidden_where_deepspeed_is_not_used(tmp_path):
    pytest.importorskip("deepspeed")  # the dev extra installs it; without it there is no notice
    assert "Setting accelerator" not in _tiny_model_output(tmp_path, ACCELERATE_USE_DEEPSPEED="false")
    # accelerate sets this in processes that run DeepSpeed: there the notice stays
    shown = _tiny_model_output(tmp_path / "ds", ACCELERATE_USE_DEEPSPEED="true")
    assert "Setting accelerator to CPU" in shown
