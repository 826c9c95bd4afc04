"""A scoring worker process: its loop (child side) and the pool's handle on it (parent side).

Why a fresh interpreter (``python -c BOOTSTRAP``) and not `multiprocessing`'s "spawn": a spawned
child re-imports the parent's ``__main__``. From a ``python -`` script that import fails (there
is no file), so the pool could not start; from a script without an ``if __name__ ==
"__main__":`` guard the child re-runs the whole script; and even a guarded training script's
imports (torch, transformers) are loaded again in every worker. A worker here imports only the
scoring function's own module (by reference, over the parent's ``sys.path``). "fork" is no
option either: the parent is usually a trainer with CUDA and threads.

Protocol on a duplex connection: the parent sends ``sys.path``, then ``(fn, initializer)``; the
worker answers ``("ready", None)`` or ``("start_failed", traceback)``. Then per item the parent
sends ``(index, args, deadline_s)`` and the worker answers exactly once, ``("result", (index,
status, value))`` with status ``ok``, ``timeout`` or ``error``; ``None`` stops the worker. A
SIGALRM from the parent cancels the running item (it answers ``timeout``) and is ignored between
items, so it can never cut a message in half.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

# Runs before the parent's sys.path is known, so it imports nothing of skywork_rl until set.
BOOTSTRAP = (
    "import sys; from multiprocessing.connection import Connection; "
    "conn = Connection(int(sys.argv[1])); sys.path[:] = conn.recv(); "
    "from skywork_rl.rewards.worker import serve; serve(conn)"
)


class PoolStartError(RuntimeError):
    """Workers cannot start (no usable interpreter, the function does not import): systemic."""


class ItemTimeout(BaseException):
    """Raised by SIGALRM when an item exceeds its deadline.

    A BaseException, so library code that catches ``Exception`` (sympy, math-verify) cannot
    swallow it.
    """


_running_item = False  # SIGALRM interrupts only while an item runs (see `on_alarm`)


def on_alarm(signum: int, frame: Any) -> None:
    if _running_item:
        raise ItemTimeout


def run_item(fn: Callable[..., Any], args: tuple[Any, ...], deadline_s: float | None) -> tuple[str, Any]:
    """``("ok", value)``, ``("timeout", message)`` or ``("error", message)`` for ``fn(*args)``.

    Needs `on_alarm` installed as the SIGALRM handler. The one-shot timer is cleared inside the
    outer ``try``, so an alarm that fires just as ``fn`` returns is still caught here. Code stuck
    in C (a big-integer power) only sees the alarm when it returns to Python; the pool's hard
    deadline covers that case.
    """
    global _running_item
    try:
        _running_item = True
        if deadline_s is not None:
            signal.setitimer(signal.ITIMER_REAL, deadline_s)
        try:
            value = fn(*args)
        finally:
            _running_item = False
            if deadline_s is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except ItemTimeout:
        return "timeout", "timed out" if deadline_s is None else f"timed out after {deadline_s:g}s"
    except Exception as error:  # noqa: BLE001 - any failure of one item is that item's 0.0
        return "error", f"{type(error).__name__}: {error}"[:500]
    return "ok", value


def serve(conn: Connection) -> None:
    """Worker loop (entered from `BOOTSTRAP` once ``sys.path`` is the parent's)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops us.
    signal.signal(signal.SIGALRM, on_alarm)
    try:
        fn, initializer = conn.recv()
        if initializer is not None:
            initializer()
    except BaseException:  # noqa: BLE001 - report why this worker cannot start, then exit
        conn.send(("start_failed", traceback.format_exc(limit=-3)[-2000:]))
        sys.exit(1)
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # parent gone
            return
        if message is None:
            return
        index, args, deadline_s = message
        status, value = run_item(fn, args, deadline_s)
        try:
            conn.send(("result", (index, status, value)))
        except (BrokenPipeError, OSError):  # parent gone
            return
        except Exception as error:  # noqa: BLE001 - the value could not be pickled
            conn.send(("result", (index, "error", f"unpicklable result: {error}"[:500])))


class WorkerProcess:
    """The parent's handle on one worker: what it runs, since when, and how to stop it."""

    def __init__(self, payload: bytes) -> None:
        """Start a worker for ``payload`` (the pickled ``(fn, initializer)``)."""
        if not sys.executable:
            raise PoolStartError("sys.executable is not set, so no worker interpreter can be started")
        self.conn, child_conn = mp.Pipe(duplex=True)
        # The interpreter flags (-X, -W, -O, -s ...), as multiprocessing passes them to its children.
        command = [sys.executable, *subprocess._args_from_interpreter_flags(), "-c", BOOTSTRAP]
        try:
            self.process = subprocess.Popen(
                [*command, str(child_conn.fileno())], pass_fds=[child_conn.fileno()], stdin=subprocess.DEVNULL
            )
        except OSError as error:
            self.conn.close()
            raise PoolStartError(f"cannot start a worker interpreter {sys.executable!r}: {error}") from error
        finally:
            child_conn.close()
        try:
            self.conn.send(sys.path)
            self.conn.send_bytes(payload)  # unpickled by the worker once sys.path is set
        except OSError as error:  # it exited at once (a broken interpreter)
            self.kill()
            raise PoolStartError(
                f"a worker interpreter {sys.executable!r} exited at start: {error}"
            ) from error
        self.started_at = time.monotonic()
        self.ready = False
        self.item: int | None = None  # index of the item it runs (in the current batch)
        self.deadline_s = 0.0
        self.item_started_at = 0.0
        self.cancelled = False  # its item was cancelled: the answer to come is to be dropped

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def busy(self) -> bool:
        return self.item is not None

    def send(self, index: int, args: tuple[Any, ...], deadline_s: float, now: float) -> None:
        self.conn.send((index, args, deadline_s))
        self.item, self.deadline_s, self.item_started_at, self.cancelled = index, deadline_s, now, False

    def done(self) -> None:
        self.item, self.cancelled = None, False

    def cancel(self, now: float) -> None:
        """Interrupt the running item (its answer will be ``timeout``, to be dropped)."""
        with contextlib.suppress(OSError):
            self.process.send_signal(signal.SIGALRM)  # a no-op if it has exited (and been reaped)
        self.cancelled, self.item_started_at, self.deadline_s = True, now, 0.0

    def overran(self, now: float, grace_s: float) -> bool:
        """Still busy ``grace_s`` past its deadline (or its cancellation): stuck in C."""
        return self.busy and now - self.item_started_at > self.deadline_s + grace_s

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.conn.close()

    def exit_code(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        return self.process.returncode

    def ask_to_stop(self) -> None:
        """Ask it to exit once its current item is done (see `wait_or_kill`)."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(None)

    def wait_or_kill(self, timeout_s: float = 2.0) -> None:
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self.conn.close()
