"""Robustness: pathological completions score 0.0 in bounded time; hung or crashed workers are replaced."""

from __future__ import annotations

import os
import signal
import time
from contextlib import closing

import pytest

from skywork_rl.rewards.accuracy import DEFAULT_BATCH_BUDGET_S, AccuracyReward, score_accuracy_detailed
from skywork_rl.rewards.pool import PoolStartError, ScoringPool, default_num_workers

TIMEOUT_S = 2.0


def _square(x: int) -> int:
    return x * x


def _ignore_soft_timeout(x: int) -> int:
    """Stands in for code stuck in C (a sympy big-int power): SIGALRM cannot interrupt it."""
    if x < 0:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
    return x


def _sleep_then_return(x: int, seconds: float) -> int:
    time.sleep(seconds)  # interruptible by the worker's SIGALRM, like sympy's Python code
    return x


def _broken_initializer() -> None:
    raise ImportError("No module named 'sympy'")  # a worker environment that cannot score


def _crash(x: int) -> int:
    if x < 0:
        os._exit(3)  # like the OOM killer: no reply, the pipe just closes
    return x


@pytest.mark.slow
def test_pathological_completions_score_zero_in_bounded_time_and_count_failures() -> None:
    nested = "\\boxed{" + "\\frac{1}{" * 2000 + "2" + "}" * 2000 + "}"
    tower = "\\boxed{2^{2^{2^{2^{2^{2^{30}}}}}}}"
    completions = [
        "<think>" + "let me think. " * 100_000 + "</think>\\boxed{5}",  # 1.4 MB, right answer
        "x" * 3_000_000,  # megabytes, no answer
        nested,  # deeply nested LaTeX
        tower,  # power tower: sympy would never finish
        "\u200b\ufffd\U0001f600\u202e" * 10_000 + "\\boxed{\ud7ff\u0000}",  # unicode junk
        "I give up.",  # no answer
        "\\boxed{5}",
    ]
    solutions = ["5", "5", "5", "5", "5", "5", "5"]
    start = time.perf_counter()
    result = score_accuracy_detailed(completions, solutions, timeout_s=TIMEOUT_S, num_workers=2)
    elapsed = time.perf_counter() - start
    assert result.scores == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert result.failures >= 1 and 3 in result.errors  # the tower ran into the deadline
    # The 3 MB of "x", "I give up.", and the nested box (past the 10,000-character box cap, and
    # the strict reward takes no stray number from inside it).
    assert result.no_answer == 3
    # Two workers, seven items, at most a couple of deadlines each: bounded, not hung.
    assert elapsed < 4 * (TIMEOUT_S + 1.0) + 10


@pytest.mark.slow
def test_adversarial_power_tower_batch_ends_within_its_budget_and_scores_the_other_answers() -> None:
    tower = "<think>Let me compute.</think> The answer is \\boxed{9^{9^{9^{9}}}}."
    others = [  # (completion, score, gave an answer), one after every three towers
        ("<think>2+2</think> \\boxed{4}", 1.0, True),
        ("<think>2+2</think> \\boxed{7}", 0.0, True),
        ("<think>hmm</think> I give up.", 0.0, False),
        ("<think>2+2</think> \\boxed{4.0}", 1.0, True),
    ]
    completions, expected = [], []
    for k in range(16):
        completions += [tower] * 3 + [others[k % 4][0]]
        expected += [0.0] * 3 + [others[k % 4][1]]
    score_accuracy_detailed(["\\boxed{4}"] * 4, ["4"] * 4, num_workers=2)  # start the workers
    start = time.perf_counter()
    result = score_accuracy_detailed(
        completions, ["4"] * 64, num_workers=2, batch_budget_s=DEFAULT_BATCH_BUDGET_S
    )
    elapsed = time.perf_counter() - start
    assert result.scores == expected  # every non-tower answer scored right, in time
    assert result.failures == 48 and sorted(result.errors) == [i for i in range(64) if i % 4 != 3]
    assert result.out_of_budget > 0  # the budget, not the per-item deadlines, ended the batch
    assert result.no_answer == 4  # no_answer is not a failure
    assert elapsed < DEFAULT_BATCH_BUDGET_S + 2.0, elapsed


@pytest.mark.slow
def test_failures_are_logged_through_trl_log_metric() -> None:
    metrics: dict[str, float] = {}
    reward = AccuracyReward(name="acc", timeout_s=TIMEOUT_S, num_workers=2)
    scores = reward(
        completions=["\\boxed{2^{2^{2^{2^{2^{2^{30}}}}}}}", "\\boxed{1}"],
        solution=["1", "1"],
        log_metric=metrics.__setitem__,
    )
    assert scores == [0.0, 1.0]
    assert metrics["rewards/acc/failures"] == 1.0


@pytest.mark.slow
def test_worker_ignoring_the_soft_deadline_is_killed_and_replaced() -> None:
    with closing(ScoringPool(_ignore_soft_timeout, num_workers=2, timeout_s=0.5, grace_s=0.5)) as pool:
        start = time.perf_counter()
        result = pool.map([(1,), (-1,), (2,), (3,)])
        assert time.perf_counter() - start < 30
        assert result.values == [1, None, 2, 3]
        assert "killed" in result.errors[1]
        assert pool.kills == 1
        assert pool.map([(4,), (5,)]).values == [4, 5]  # the rebuilt pool keeps working


@pytest.mark.slow
def test_crashed_worker_fails_only_its_item_and_is_replaced() -> None:
    with closing(ScoringPool(_crash, num_workers=2, timeout_s=5.0)) as pool:
        result = pool.map([(1,), (-1,), (2,)])
        assert result.values == [1, None, 2]
        assert result.errors == {1: "worker process died"}
        assert pool.map([(7,)]).values == [7]


@pytest.mark.slow
def test_pool_keeps_item_order_across_workers() -> None:
    with closing(ScoringPool(_square, num_workers=2, timeout_s=5.0)) as pool:
        assert pool.map([(i,) for i in range(50)]).values == [i * i for i in range(50)]


@pytest.mark.slow
def test_right_answers_queued_behind_slow_items_are_scored_before_the_budget_runs_out() -> None:
    slow, fast = [(i, 30.0) for i in range(6)], [(i, 0.0) for i in range(6, 12)]
    with closing(ScoringPool(_sleep_then_return, num_workers=2, timeout_s=10.0)) as pool:
        pool.map([(0, 0.0)])  # start the workers: the budget does not charge start-up
        start = time.perf_counter()
        result = pool.map(slow + fast, budget_s=3.0)
        elapsed = time.perf_counter() - start
        assert result.values == [None] * 6 + list(range(6, 12))
        assert sorted(result.errors) == list(range(6)) and result.out_of_budget == 6
        assert all("budget of 3s ran out" in result.errors[i] for i in range(6))
        assert elapsed < 3.0 + 1.5
        # The two workers busy at the end were interrupted, not killed: the next batch is immediate.
        start = time.perf_counter()
        assert pool.map([(7, 0.0), (8, 0.0)], budget_s=3.0).values == [7, 8]
        assert time.perf_counter() - start < 1.0 and pool.kills == 0


@pytest.mark.slow
def test_per_item_deadline_still_fails_one_slow_item_under_a_batch_budget() -> None:
    with closing(ScoringPool(_sleep_then_return, num_workers=2, timeout_s=1.0)) as pool:
        start = time.perf_counter()
        result = pool.map([(1, 0.0), (2, 5.0), (3, 0.0)], budget_s=30.0)
        assert time.perf_counter() - start < 15  # start-up plus one 1 s deadline, not 5 s or 30 s
        assert result.values == [1, None, 3]
        assert result.errors == {1: "timed out after 1s"} and result.out_of_budget == 0


@pytest.mark.slow
def test_worker_stuck_when_the_budget_runs_out_is_killed_and_the_next_batch_is_clean() -> None:
    with closing(ScoringPool(_ignore_soft_timeout, num_workers=2, timeout_s=5.0, grace_s=0.5)) as pool:
        pool.map([(0,)])
        start = time.perf_counter()
        result = pool.map([(-1,), (1,), (2,)], budget_s=2.0)
        assert time.perf_counter() - start < 2.0 + 0.5 + 1.5  # budget, grace, killing
        assert result.values == [None, 1, 2] and result.out_of_budget == 1
        assert pool.kills >= 1  # it blocks SIGALRM: only a kill stops it
        assert pool.map([(4,), (5,)], budget_s=30.0).values == [4, 5]


def test_pool_whose_workers_cannot_start_raises_instead_of_failing_items() -> None:
    pool = ScoringPool(_square, num_workers=1, timeout_s=1.0, initializer=_broken_initializer)
    with pytest.raises(PoolStartError, match="No module named 'sympy'"):
        pool.map([(2,)])
    with pytest.raises(PoolStartError, match="closed"):
        pool.map([(2,)])


def test_pool_refuses_a_function_that_a_fresh_interpreter_cannot_import() -> None:
    def local(x: int) -> int:
        return x

    local.__module__ = "__main__"  # as in a `python -` script or a notebook
    with pytest.raises(PoolStartError, match="move it into an importable module"):
        ScoringPool(local, num_workers=1, timeout_s=1.0)


def test_pool_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_workers"):
        ScoringPool(_square, num_workers=0, timeout_s=1.0)
    with pytest.raises(ValueError, match="timeout_s"):
        ScoringPool(_square, num_workers=1, timeout_s=0)


def test_default_workers_share_the_cores_among_local_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(96)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_num_workers() == 96
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_num_workers() == 12
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "200")
    assert default_num_workers() == 1  # never zero: zero would mean in-process scoring
