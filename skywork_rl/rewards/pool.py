"""A process pool that scores items in parallel under a per-item deadline and a batch budget.

Why not `concurrent.futures.ProcessPoolExecutor`: it cannot tell which queued item a worker is
running, so a deadline can only be enforced per batch and a hung worker can only be stopped by
tearing down every worker (failing innocent items). math-verify's own timeout uses
``signal.alarm``, which only works in a main thread and cannot interrupt C code (a sympy big-int
power, a regex). Here every worker (`worker.py`) runs one item at a time from its own pipe, so
the parent knows when each item started:

- soft deadline: inside the worker a SIGALRM timer raises `ItemTimeout` at the item's deadline;
- hard deadline: if the worker still has not answered ``grace_s`` later (stuck in C), the parent
  kills that one worker and starts a replacement; only that item fails;
- batch budget (optional, per `map` call): when it runs out, the items without a result fail,
  and the workers still busy are interrupted (SIGALRM) or, if stuck, killed and replaced, so the
  next batch starts with idle workers. The schedule that keeps right answers from starving behind
  slow ones is in `batch.py`.

A worker that dies (OOM, segfault) is replaced the same way. Workers are fresh interpreters that
import only the scoring function's module, so any script can use the pool, a ``python -`` one
included; they stay alive across calls, so the start-up cost is paid once. A pool whose workers
cannot start raises `PoolStartError`: a systemic failure, never one item's.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

from skywork_rl.errors import SkyworkError
from skywork_rl.rewards.batch import Batch, MapResult
from skywork_rl.rewards.in_process import DeadlineUnavailable, map_in_process
from skywork_rl.rewards.worker import ItemTimeout, PoolStartError, WorkerProcess

__all__ = ["ItemTimeout", "MapResult", "PoolStartError", "ScoringPool", "default_num_workers", "shared_pool"]

logger = logging.getLogger(__name__)

# How long a fresh worker may take to import its scoring function before the parent gives up on
# it (sympy + math-verify import in ~1-2 s idle, ~8 s on a 2-core box loaded 5x over).
_STARTUP_TIMEOUT_S = 120.0


class ScoringPool:
    """Run a module-level function over items in worker processes with per-item deadlines.

    Args:
        fn: module-level function, importable by reference in a fresh interpreter (not one
            defined in ``__main__``); called as ``fn(*item)`` in a worker.
        num_workers: worker processes (>= 1).
        timeout_s: per-item deadline (soft, inside the worker).
        grace_s: extra time before the parent kills a worker that ignored the soft deadline.
        initializer: run once in each worker before it reports ready (imports, logging setup).

    Raises `PoolStartError` (from the constructor or `map`) when workers cannot start.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        num_workers: int,
        timeout_s: float,
        grace_s: float = 1.0,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"ScoringPool: num_workers must be >= 1, got {num_workers}")
        if timeout_s <= 0:
            raise ValueError(f"ScoringPool: timeout_s must be > 0, got {timeout_s}")
        for function in (fn, initializer):
            if getattr(function, "__module__", None) == "__main__":
                raise PoolStartError(
                    f"{function.__qualname__} is defined in __main__, which a fresh worker cannot "
                    "import; move it into an importable module"
                )
        try:
            self._payload = pickle.dumps((fn, initializer))
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise TypeError(
                f"ScoringPool: fn and initializer must be module-level functions ({error})"
            ) from None
        self.fn, self.num_workers, self.timeout_s, self.grace_s = fn, num_workers, timeout_s, grace_s
        self.initializer = initializer
        self.kills = 0  # workers killed past the hard deadline (or stuck when a budget ran out)
        self._lock = threading.Lock()
        self._workers: list[WorkerProcess] = []
        try:
            for _ in range(num_workers):
                self._workers.append(WorkerProcess(self._payload))
        except PoolStartError:
            self.close()
            raise
        atexit.register(self.close)

    def _replace(self, worker: WorkerProcess) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = WorkerProcess(self._payload)

    def map(
        self,
        items: Sequence[tuple[Any, ...]],
        budget_s: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> MapResult:
        """Score every item; an item's failure is in ``errors``, never raised.

        ``budget_s``: wall-clock budget of this batch, counted from the moment the first worker
        is ready (so the one-off start-up is not charged); items without a result when it runs
        out fail (``MapResult.out_of_budget`` counts them). None: only per-item deadlines.
        ``progress(n)`` is called as items finish (for a progress bar).
        Raises `PoolStartError` (and closes the pool) when workers cannot start.
        """
        with self._lock:
            if not self._workers:
                raise PoolStartError("this pool was closed")
            try:
                return self._map(items, budget_s, progress)
            except PoolStartError:
                self.close()
                raise

    def _map(
        self,
        items: Sequence[tuple[Any, ...]],
        budget_s: float | None,
        progress: Callable[[int], None] | None = None,
    ) -> MapResult:
        batch = Batch(len(items), self.timeout_s, budget_s, self.num_workers, progress)
        while batch.remaining:
            now = time.monotonic()
            if any(w.ready for w in self._workers):
                batch.start_clock(now)
            if batch.expired(now):
                batch.expire()
                for worker in self._workers:
                    if worker.busy:
                        worker.cancel(now)
                break
            self._dispatch(batch, items, now)
            self._receive(batch, self._wait_s(batch, now))
            self._enforce_deadlines(batch)
        # Cancelled workers answer within milliseconds; one stuck in C is killed grace_s later.
        # Either way no worker is busy when the next batch starts.
        while any(w.busy for w in self._workers):
            self._receive(batch, self._wait_s(batch, time.monotonic()))
            self._enforce_deadlines(batch)
        return batch.result()

    def _dispatch(self, batch: Batch, items: Sequence[tuple[Any, ...]], now: float) -> None:
        for worker in list(self._workers):
            if not worker.ready or worker.busy:
                continue
            todo = batch.next_item()
            if todo is None:
                return
            index, deadline_s = todo
            try:
                worker.send(index, items[index], deadline_s, now)
            except (BrokenPipeError, OSError):
                batch.put_back(index, deadline_s)
                self._replace(worker)

    def _wait_s(self, batch: Batch, now: float) -> float:
        deadlines = [w.item_started_at + w.deadline_s + self.grace_s for w in self._workers if w.busy]
        deadlines += [w.started_at + _STARTUP_TIMEOUT_S for w in self._workers if not w.ready]
        if batch.expires_at is not None and batch.remaining:
            deadlines.append(batch.expires_at)
        return max(0.0, min(deadlines) - now) if deadlines else 1.0

    def _receive(self, batch: Batch, wait_s: float) -> None:
        ready = wait([w.conn for w in self._workers], timeout=wait_s)
        for worker in [w for w in self._workers if w.conn in ready]:
            try:
                kind, payload = worker.conn.recv()
            except (EOFError, OSError):  # the worker died (OOM killer, segfault)
                if not worker.ready:
                    raise PoolStartError(
                        f"a worker exited while starting (exit code {worker.exit_code()}); see its "
                        "output above"
                    ) from None
                if worker.busy and not worker.cancelled:
                    batch.fail(worker.item, "worker process died")
                logger.warning("scoring worker %s died; starting a new one", worker.pid)
                self._replace(worker)
                continue
            if kind == "start_failed":
                raise PoolStartError(f"a worker could not load {self.fn.__module__}:\n{payload}")
            if kind == "ready":
                worker.ready = True
                continue
            index, status, value = payload
            if worker.cancelled:  # its item failed when the budget ran out; the answer is late
                pass
            elif status == "ok":
                batch.finish(index, value)
            elif status == "timeout":
                batch.ran_out(index, worker.deadline_s, value)
            else:
                batch.fail(index, value)
            worker.done()

    def _enforce_deadlines(self, batch: Batch) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.overran(now, self.grace_s):
                if not worker.cancelled:
                    hard_s = worker.deadline_s + self.grace_s
                    batch.ran_out(
                        worker.item, worker.deadline_s, f"killed after {hard_s:g}s (ignored the deadline)"
                    )
                logger.warning("scoring worker %s ignored its deadline; killed", worker.pid)
                self.kills += 1
                self._replace(worker)
            elif not worker.ready and now - worker.started_at > _STARTUP_TIMEOUT_S:
                raise PoolStartError(
                    f"a worker did not start within {_STARTUP_TIMEOUT_S:g}s; check that "
                    f"{self.fn.__module__} imports quickly in a fresh interpreter"
                )

    def close(self) -> None:
        """Stop the workers (idempotent; also registered with atexit)."""
        for worker in self._workers:
            worker.ask_to_stop()
        for worker in self._workers:
            worker.wait_or_kill()
        self._workers = []


_POOLS: dict[tuple[Any, ...], ScoringPool] = {}
_POOLS_LOCK = threading.Lock()


def default_num_workers() -> int:
    """This process's share of the cores: usable cores // ``LOCAL_WORLD_SIZE``, at least 1.

    Usable cores respect CPU affinity / cgroup-limited sets. Every training process on a node
    starts its own pool, so without the division 8 accelerate processes on a 96-core node would
    start ~770 workers. ``LOCAL_WORLD_SIZE`` is set by torchrun / accelerate launch (1 if unset).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    try:
        local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local_processes = 1
    return max(1, cores // local_processes)


def shared_pool(
    fn: Callable[..., Any],
    num_workers: int,
    timeout_s: float,
    initializer: Callable[[], None] | None = None,
) -> ScoringPool:
    """The process-wide pool for ``(fn, num_workers, timeout_s)``, started on first use.

    Kept alive across reward calls: starting workers costs seconds, a GRPO step calls the reward
    every few seconds. A pool closed by a start failure is started afresh on the next call.
    """
    key = (fn, num_workers, timeout_s, initializer)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or not pool._workers:
            pool = _POOLS[key] = ScoringPool(fn, num_workers, timeout_s, initializer=initializer)
        return pool


# Why each function's worker pool could not start in this process. A start failure is systemic
# (no usable interpreter, an unimportable module), so later calls go straight to in-process
# scoring instead of paying for another failed start.
_START_FAILURES: dict[Callable[..., Any], str] = {}


def map_with_deadlines(
    fn: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    *,
    num_workers: int,
    timeout_s: float,
    budget_s: float | None = None,
    initializer: Callable[[], None] | None = None,
    what: str = "scoring",
    progress: Callable[[int], None] | None = None,
) -> MapResult:
    """``fn(*item)`` for every item under the per-item deadline (and batch budget), never unchecked.

    Worker processes when they can start; otherwise this process, with the same deadlines (SIGALRM,
    main thread only), after one warning. When neither can enforce a deadline it raises
    `SkyworkError` rather than return scores it did not compute. ``num_workers=0`` scores in this
    process without any deadline (debugging).
    """
    if not items:
        return MapResult(values=[], errors={})
    if num_workers == 0:
        return map_in_process(fn, items, timeout_s=None, initializer=initializer, progress=progress)
    if fn not in _START_FAILURES:
        try:
            pool = shared_pool(fn, num_workers, timeout_s, initializer=initializer)
            return pool.map(items, budget_s=budget_s, progress=progress)
        except PoolStartError as error:
            _START_FAILURES[fn] = str(error)
            logger.warning(
                "%s: worker processes could not start (%s). Scoring in this process from now on: one "
                "item at a time, same deadlines (by SIGALRM, which cannot interrupt code stuck in C).",
                what,
                error,
            )
    try:
        return map_in_process(fn, items, timeout_s, budget_s, initializer=initializer, progress=progress)
    except DeadlineUnavailable as error:
        raise SkyworkError(
            f"{what}: worker processes could not start ({_START_FAILURES[fn]}), and scoring in this "
            f"process could hang on one answer: {error}. Call it from the main thread, or fix the "
            "workers' start (the reason above)."
        ) from None
