"""What a person sees of `skywork-rl run`: progress bars redrawn in place, each warning once, a few
lines per stage; `stage.log` keeps everything. The whole tiny pipeline in a pseudo-terminal is
checked in tests/test_tiny_pipeline.py (its one run happens there, through `_run_in_terminal`)."""

from __future__ import annotations

import io
import os
import pty
import time
from pathlib import Path

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
