"""The runner's stage processes: `stage.log` fills while a stage runs, and a killed runner takes its
stage down with it (through `accelerate launch`, as real training stages run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

_SLEEPY_STAGE = textwrap.dedent(
    """
    import time
    from dataclasses import dataclass, field

    from skywork_rl.stages.base import Stage


    @dataclass
    class Options:
        output_dir: str = ""
        seconds: float = 120.0


    @dataclass
    class Config:
        sleepy: Options = field(default_factory=Options)


    class SleepyStage(Stage):
        name = "sleepy"
        config_class = Config
        output_dir_key = "sleepy.output_dir"
        input_model_key = None
        input_data_key = None

        def run(self):
            print("sleepy: started", flush=True)
            time.sleep(self.config.sleepy.seconds)
            return {"slept": self.config.sleepy.seconds}
    """
)


def _start_runner(tmp_path: Path, launcher: str) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "sleepy_stage.py").write_text(_SLEEPY_STAGE)
    spec = {
        "output_root": str(tmp_path / "out"),
        "accelerate_config": str(REPO / "recipes" / "accelerate" / "cpu.yaml"),
        "stages": [{"id": "nap", "stage": "sleepy_stage:SleepyStage", "launcher": launcher}],
    }
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    runner = subprocess.Popen(
        [sys.executable, "-m", "skywork_rl.cli", "run", str(tmp_path / "pipe.yaml"), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return runner, tmp_path / "out" / "nap"


def _wait_until_sleeping(runner: subprocess.Popen, out: Path, timeout: float = 240) -> tuple[int, str]:
    """The stage process's pid (from its stage.json) and stage.log's text once the stage has started."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert runner.poll() is None, "the runner exited early"
        log = out / "stage.log"
        if log.exists() and "sleepy: started" in log.read_text() and (out / "stage.json").exists():
            return json.loads((out / "stage.json").read_text())["pid"], log.read_text()
        time.sleep(0.5)
    raise AssertionError("the stage did not start in time")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cleanup(runner: subprocess.Popen, pid: int | None) -> None:
    for p in (runner.pid, pid):
        if p is not None and _alive(p):
            os.kill(p, signal.SIGKILL)
    runner.wait(timeout=30)


@pytest.mark.slow
def test_stage_log_has_the_stage_output_while_it_runs(tmp_path):
    runner, out = _start_runner(tmp_path, launcher="python")
    pid = None
    try:
        pid, log = _wait_until_sleeping(runner, out)
        assert _alive(pid) and json.loads((out / "stage.json").read_text())["status"] == "running"
        assert log.splitlines()[-1] == "sleepy: started"  # written as it came, not when the stage ends
    finally:
        _cleanup(runner, pid)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_the_runner_kills_the_stage_process(tmp_path, sig):
    runner, out = _start_runner(tmp_path, launcher="accelerate")
    pid = None
    try:
        pid, _ = _wait_until_sleeping(runner, out)
        assert psutil.Process(pid).ppid() != runner.pid  # runner -> accelerate launch -> stage
        runner.send_signal(sig)
        runner.wait(timeout=60)
        deadline = time.time() + 30
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), f"the stage process {pid} outlived the runner killed with {sig.name}"
        # Either way the stage was interrupted (SIGINT from the runner, or SIGTERM when its launcher
        # died) and says so: never "running" for a dead stage.
        record = json.loads((out / "stage.json").read_text())
        assert record["status"] == "failed" and "KeyboardInterrupt" in record["error"]
    finally:
        _cleanup(runner, pid)


def test_a_second_stop_signal_does_not_cut_short_what_the_first_one_started(tmp_path):
    """SIGINT then SIGTERM (the runner's, then the dead launcher's): the stage still records."""
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from skywork_rl.runner.stage_process import interrupt_once_on_stop

        interrupt_once_on_stop()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        except KeyboardInterrupt as exc:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the interruption is being recorded
            time.sleep(0.5)
            open({str(tmp_path / "recorded")!r}, "w").write(str(exc))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "recorded").read_text() == "stopped by SIGINT"
