"""Where the worker pool starts and where it cannot: right scores or a loud error, never silent zeros.

The scripts run as a user runs them, ``python -`` reading the script from stdin (a ``__main__``
with no file, which multiprocessing's spawned workers cannot re-import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import skywork_rl
from skywork_rl.errors import SkyworkError
from skywork_rl.rewards import pool
from skywork_rl.rewards.accuracy import score_accuracy

REPO = Path(skywork_rl.__file__).resolve().parents[1]

SCRIPT = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING)
from skywork_rl.rewards import AccuracyReward
{setup}
metrics = {{}}
reward = AccuracyReward(timeout_s=2.0, num_workers=2)
scores = reward(
    completions=["\\\\boxed{{4}}", "\\\\boxed{{5}}", "\\\\boxed{{\\\\frac{{1}}{{2}}}}", "\\\\boxed{{9^{{9^{{9^{{9}}}}}}}}"],
    solution=["4", "6", "0.5", "3"],
    log_metric=metrics.__setitem__,
)
print(json.dumps({{"scores": scores, "metrics": metrics}}))
"""


def _run_stdin_script(setup: str, cwd: Path) -> tuple[dict, str]:
    completed = subprocess.run(
        [sys.executable, "-"],
        input=SCRIPT.format(setup=setup),
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1]), completed.stderr


@pytest.mark.slow
def test_accuracy_reward_in_a_stdin_script_scores_right_answers_in_worker_processes(tmp_path: Path) -> None:
    output, stderr = _run_stdin_script("", tmp_path)
    assert output["scores"] == [1.0, 0.0, 1.0, 0.0]
    assert output["metrics"] == {"rewards/accuracy/failures": 1.0, "rewards/accuracy/no_answer": 0.0}
    assert "could not start" not in stderr  # scored by the pool, not the fallback


@pytest.mark.slow
def test_accuracy_reward_whose_workers_cannot_start_scores_in_process_with_its_deadline(
    tmp_path: Path,
) -> None:
    # An embedded interpreter: sys.executable is no Python, so no worker can be launched.
    output, stderr = _run_stdin_script("sys.executable = '/nonexistent/python'", tmp_path)
    assert output["scores"] == [1.0, 0.0, 1.0, 0.0]  # checked, not zeros
    assert output["metrics"]["rewards/accuracy/failures"] == 1.0  # the power tower hit its deadline
    assert "worker processes could not start" in stderr and "/nonexistent/python" in stderr
    assert stderr.count("could not start") == 1  # said once, not per batch


def test_accuracy_off_the_main_thread_without_workers_raises_instead_of_scoring_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.setattr(pool, "_START_FAILURES", {})  # restored after the test
    outcome: dict[str, object] = {}

    def score() -> None:
        try:
            # A worker count no other test uses, so no already-running shared pool is reused.
            outcome["scores"] = score_accuracy(["\\boxed{4}"], ["4"], num_workers=3, timeout_s=1.5)
        except Exception as error:  # noqa: BLE001 - handed to the main thread's assertions
            outcome["error"] = error

    thread = threading.Thread(target=score, name="reward-thread")
    thread.start()
    thread.join(timeout=60)
    assert "scores" not in outcome
    assert isinstance(outcome["error"], SkyworkError)
    message = str(outcome["error"])
    assert "/nonexistent/python" in message and "reward-thread" in message and "main thread" in message
