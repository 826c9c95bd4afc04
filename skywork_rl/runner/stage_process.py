"""A pipeline stage's processes live and die with the runner that started them.

The runner starts each stage (usually `accelerate launch`, which starts the stage's own processes)
in a new process group and, on Linux, with ``PR_SET_PDEATHSIG``:

- the runner exits, fails, gets Ctrl-C, SIGTERM or SIGHUP: the whole group gets SIGINT (the stage
  records that it was interrupted; `interrupt_once_on_stop`), then SIGTERM, then SIGKILL, each only
  if some process of the group (not just its leader) is still running after the previous one;
- the runner is SIGKILLed (no handler runs): the kernel sends SIGTERM to the direct child, and every
  `skywork_rl.cli` process under it asks for the same with its own parent (`DIE_WITH_PARENT_ENV`), so
  the chain runner -> launcher -> stage unwinds instead of training on into a dead pipe.

Output is read as raw bytes as it arrives (progress bars' carriage returns intact) and handed to a
callback; the caller writes it to ``stage.log`` and the console.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType

DIE_WITH_PARENT_ENV = "SKYWORK_RL_DIE_WITH_PARENT"
_PR_SET_PDEATHSIG = 1
# (signal, seconds to wait for the group to exit after it) when a stage must stop early.
_STOP_SEQUENCE = ((signal.SIGINT, 10.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))


def die_with_parent() -> None:
    """Have Linux SIGTERM this process when its parent exits (a no-op on other systems)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def interrupt_once_on_stop() -> None:
    """In a stage process: the first SIGINT or SIGTERM raises KeyboardInterrupt, later ones are ignored.

    A stopped stage gets two signals: SIGINT from the runner (to the whole group) and SIGTERM from
    `die_with_parent` when `accelerate launch`, its parent, exits on that SIGINT. Whichever comes
    first must interrupt the stage, and the second must not cut short what the interruption does
    next: `run_stage` writing "failed" into stage.json. With Python's defaults SIGTERM killed the
    process outright, before or while it recorded that (stage.json said "running" for a dead stage).
    The runner's SIGKILL, seconds later, still ends a stage that hangs.
    """
    if not _in_main_thread():
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_streaming(cmd: list[str], env: dict[str, str], on_output: Callable[[bytes], None]) -> int:
    """Run `cmd` in its own process group, pass its output (stdout and stderr) to `on_output` as it
    arrives, and return its exit code. Whatever way this function is left, no process of the group
    outlives it."""
    env = {**env, DIE_WITH_PARENT_ENV: "1"}
    handlers = {}
    if _in_main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            handlers[sig] = signal.signal(sig, _raise_exit)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    assert proc.stdout is not None
    try:
        fd = proc.stdout.fileno()
        quiet_after_exit = 0
        while quiet_after_exit < 20:  # the child exited and 10 s passed without output or EOF
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    break
                on_output(data)
            elif proc.poll() is not None:
                _signal_group(proc.pid, signal.SIGKILL)  # stragglers holding the pipe open
                quiet_after_exit += 1
        return proc.wait()
    finally:
        _stop(proc)
        proc.stdout.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the group: gently first, so the stage can record that it was interrupted.

    Each signal is followed by a wait for the whole group, not only its leader: `accelerate launch`
    (the leader) exits at once on SIGINT while the stage process under it is still writing
    "interrupted" into its stage.json, and a SIGKILL sent then left the stage "running" on disk.
    """
    for sig, wait in _STOP_SEQUENCE:
        if not _group_alive(proc) or not _signal_group(proc.pid, sig):
            break
        if _wait_group(proc, wait):
            break
    _signal_group(proc.pid, signal.SIGKILL)  # anything of the group still left
    proc.wait()


def _wait_group(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once every process of `proc`'s group has exited (within `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(proc):
            return True
        time.sleep(0.05)
    return not _group_alive(proc)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether any process of the group (the leader included) still runs; zombies do not count.

    Not `killpg(pgid, 0)`: a member whose parent exited is reparented to PID 1, and a container's
    PID 1 need not reap it, so that call would see its zombie as alive for ever.
    """
    import psutil

    proc.poll()  # reap the leader if it exited, so it is not a zombie of ours
    for member in psutil.process_iter(["status"]):
        try:
            if os.getpgid(member.pid) == proc.pid and member.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except ProcessLookupError:
            continue  # exited while we looked
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
