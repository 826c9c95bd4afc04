"""The schedule of one scoring batch: which item runs next, under which deadline, until when.

Shared by the worker pool (`pool.py`) and the in-process fallback (`in_process.py`) so both
score a batch the same way.

Without a batch budget every item runs once, in order, under the per-item deadline.

With a budget, first-in-first-out would let a few adversarial items at the head of a batch
(power towers that each run to the per-item deadline) use it all up, and the right answers queued
behind them would score 0.0: a correct completion punished for sharing a batch. So the batch runs
in two passes:

1. every item gets a short slice: the batch's fair share of half the budget
   (``budget * workers / (2 * items)``), clamped to [`MIN_SLICE_S`, per-item deadline]. Ordinary
   answers take milliseconds and finish here; an all-adversarial batch finishes this pass within
   about half the budget;
2. items that ran out of their slice run again, in order, under the full per-item deadline, while
   the budget lasts.

When the budget runs out, every item without a result gets the error `OUT_OF_BUDGET` (callers
score it 0.0 and count it as a failure).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Floor of the first-pass slice: a plain-number or short-LaTeX answer verifies in well under this
# on a loaded core, so a right answer is not pushed to the second pass by a tiny share.
MIN_SLICE_S = 0.05
OUT_OF_BUDGET = "the batch budget of {budget:g}s ran out before this item was scored"


@dataclass
class MapResult:
    """Per-item values (None where the item failed) and the failure messages by index.

    ``out_of_budget`` counts the failed items that the batch budget ran out on (they are in
    ``errors`` too).
    """

    values: list[Any]
    errors: dict[int, str]
    out_of_budget: int = 0


class Batch:
    """Scheduling state of one ``map`` call over ``size`` items.

    Args:
        size: number of items.
        timeout_s: the per-item deadline.
        budget_s: wall-clock budget of the whole batch (None: no budget, one pass).
        workers: how many items run at once (sizes the first-pass slice).
    """

    def __init__(
        self,
        size: int,
        timeout_s: float,
        budget_s: float | None,
        workers: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if budget_s is not None and budget_s <= 0:
            raise ValueError(f"budget_s must be > 0 (or None for no budget), got {budget_s}")
        self.timeout_s, self.budget_s = timeout_s, budget_s
        self.values: list[Any] = [None] * size
        self.errors: dict[int, str] = {}
        self.out_of_budget = 0
        self.remaining = size
        self.expires_at: float | None = None
        self._finished = [False] * size
        self._progress = progress  # told of every item that gets its result or fails
        if budget_s is None or size == 0:
            first_s = timeout_s
        else:
            first_s = min(timeout_s, max(MIN_SLICE_S, budget_s * workers / (2 * size)))
        self.first_s = first_s
        self._queue: deque[tuple[int, float]] = deque((i, first_s) for i in range(size))

    def start_clock(self, now: float) -> None:
        """Start the budget (once): when the first item can run, so worker start-up is not charged."""
        if self.budget_s is not None and self.expires_at is None:
            self.expires_at = now + self.budget_s

    def budget_left(self, now: float) -> float | None:
        """Seconds until the budget runs out (None: no budget or clock not started)."""
        return None if self.expires_at is None else self.expires_at - now

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def next_item(self) -> tuple[int, float] | None:
        """The next ``(index, deadline_s)`` to run, or None when nothing is waiting."""
        return self._queue.popleft() if self._queue else None

    def put_back(self, index: int, deadline_s: float) -> None:
        """Return an item that could not be handed to a worker to the head of the queue."""
        self._queue.appendleft((index, deadline_s))

    def finish(self, index: int, value: Any) -> None:
        self.values[index] = value
        self._close(index)

    def fail(self, index: int, message: str) -> None:
        self.errors[index] = message
        self._close(index)

    def ran_out(self, index: int, deadline_s: float, message: str) -> None:
        """An item hit ``deadline_s``: a first-pass slice goes to the second pass, a full deadline fails."""
        if deadline_s < self.timeout_s:
            self._queue.append((index, self.timeout_s))
        else:
            self.fail(index, message)

    def expire(self) -> list[int]:
        """The budget ran out: fail every item without a result; returns their indices."""
        assert self.budget_s is not None
        unscored = [i for i, finished in enumerate(self._finished) if not finished]
        for index in unscored:
            self.fail(index, OUT_OF_BUDGET.format(budget=self.budget_s))
        self.out_of_budget += len(unscored)
        self._queue.clear()
        return unscored

    def result(self) -> MapResult:
        return MapResult(values=self.values, errors=self.errors, out_of_budget=self.out_of_budget)

    def _close(self, index: int) -> None:
        if not self._finished[index]:
            self._finished[index] = True
            self.remaining -= 1
            if self._progress is not None:
                self._progress(1)
