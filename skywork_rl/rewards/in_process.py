"""Scoring in the calling process: the fallback when worker processes cannot start.

Same schedule as the pool (`batch.py`: per-item deadline, batch budget, two passes), one item at
a time. The deadline is a SIGALRM timer, as in the workers, so it needs the main thread (Python
delivers signals only there) and a free ``ITIMER_REAL``; otherwise `DeadlineUnavailable` is
raised rather than scoring without a deadline, where one pathological answer would hang the
caller. What no in-process deadline can do is interrupt code stuck in C (a huge integer power):
it sees the alarm only when it returns to Python. Workers can be killed; this process cannot.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from skywork_rl.rewards.batch import Batch, MapResult
from skywork_rl.rewards.worker import on_alarm, run_item


class DeadlineUnavailable(RuntimeError):
    """A deadline cannot be enforced in this process (not the main thread, or SIGALRM in use)."""


def map_in_process(
    fn: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    timeout_s: float | None,
    budget_s: float | None = None,
    initializer: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> MapResult:
    """``fn(*item)`` for every item, in this process; failures are per item, as in `ScoringPool.map`.

    ``timeout_s=None`` (and no budget) runs every item to completion without any deadline: for
    debugging, where a debugger must be able to stop inside ``fn``.
    """
    if initializer is not None:
        initializer()
    if timeout_s is None:
        if budget_s is not None:
            raise ValueError("map_in_process: a batch budget needs a per-item timeout_s")
        batch = Batch(len(items), timeout_s=float("inf"), budget_s=None, workers=1, progress=progress)
        for index, item in enumerate(items):
            _record(batch, index, float("inf"), run_item(fn, item, None))
        return batch.result()
    if threading.current_thread() is not threading.main_thread():
        raise DeadlineUnavailable(
            f"cannot enforce a deadline from thread {threading.current_thread().name!r}: "
            "SIGALRM is delivered only to the main thread"
        )
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        raise DeadlineUnavailable("cannot enforce a deadline: this process's SIGALRM timer is already in use")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        return _run(fn, items, timeout_s, budget_s, progress)
    finally:
        signal.signal(signal.SIGALRM, previous)


def _run(
    fn: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    timeout_s: float,
    budget_s: float | None,
    progress: Callable[[int], None] | None = None,
) -> MapResult:
    batch = Batch(len(items), timeout_s, budget_s, workers=1, progress=progress)
    batch.start_clock(time.monotonic())
    while (todo := batch.next_item()) is not None:
        index, deadline_s = todo
        left = batch.budget_left(time.monotonic())
        if left is not None and left <= 0:
            batch.expire()
            break
        if left is not None and left < deadline_s:
            status, value = run_item(fn, items[index], left)
            if status == "timeout":  # the budget's alarm, not the item's own deadline
                batch.expire()
                break
        else:
            status, value = run_item(fn, items[index], deadline_s)
        _record(batch, index, deadline_s, (status, value))
    return batch.result()


def _record(batch: Batch, index: int, deadline_s: float, outcome: tuple[str, Any]) -> None:
    status, value = outcome
    if status == "ok":
        batch.finish(index, value)
    elif status == "timeout":
        batch.ran_out(index, deadline_s, value)
    else:
        batch.fail(index, value)
