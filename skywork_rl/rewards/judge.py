"""An answer judge: a generation backend asked YES/NO questions, with a verdict cache and a time budget.

- **One backend call per batch.** Every question the cache cannot answer goes to the backend in one
  `GenerationBackend.generate` call (the transformers backend splits it into its own batches; vLLM
  schedules it itself), greedy, so a question always gets the same reply and its verdict can be cached.
- **Cached** per rendered question (for the default prompt: per (answer, gold, options)), LRU-bounded.
  Unparsable replies are cached too: a greedy judge would give them again.
- **Bounded in time.** With a budget the backend call runs on a worker thread and the caller waits
  at most the budget; questions still open then are "out of budget" for this call. The call keeps
  running and its verdicts fill the cache; the next call waits for it (within its own budget) before
  asking anything, so at most one backend call is in flight. A backend call that raises is a broken
  judge: the error is raised to the caller (at once, or at the next call for one that outlived its own).
  The transformers backend seeds through torch's global RNG, restoring it afterwards: a call that
  outlives its budget restores it while training goes on, so a run in which the judge ran out of
  budget is not bit-reproducible (it was not anyway: which answers were judged depended on timing).
- **Per process.** Under multi-process training every process has its own judge on its own device
  and judges its own completions; nothing is exchanged between ranks, so a slow judge on one rank
  cannot hang a collective.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from skywork_rl.errors import SkyworkError
from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.rewards.judge_prompt import JudgeQuery, parse_verdict, render_judge_prompt

logger = logging.getLogger(__name__)

# A judge's batch is one generate call of a few tokens per question: seconds. A minute leaves room
# for a cold start or a busy GPU, and still stops a wedged judge from stalling a step for long.
DEFAULT_JUDGE_BUDGET_S = 60.0
UNPARSABLE = "unparsable"
OUT_OF_BUDGET = "out_of_budget"
_MISSING = object()


@dataclass
class JudgeResult:
    """Per query: True / False, or None with the reason (`UNPARSABLE`, `OUT_OF_BUDGET`)."""

    verdicts: list[bool | None]
    reasons: dict[int, str] = field(default_factory=dict)
    cached: int = 0  # queries answered from the cache
    asked: int = 0  # distinct questions sent to the backend by this call


class Judge:
    """YES/NO answer judge over any `GenerationBackend` (see the module docstring).

    Args:
        backend: the backend, or a function building it (called once, on first use, in the caller's
            thread, outside any budget: loading a model is not judging).
        template: the question (`skywork_rl.rewards.judge_prompt.DEFAULT_JUDGE_PROMPT`).
        max_new_tokens: reply length; a reply is read from its first word.
        cache_size: verdicts kept (least recently used dropped first).
        name: for log lines and errors (the reward's name).
    """

    def __init__(
        self,
        backend: Any | Callable[[], Any],
        *,
        template: str,
        max_new_tokens: int = 8,
        cache_size: int = 100_000,
        name: str = "verifier",
    ) -> None:
        self._backend = backend if hasattr(backend, "generate") else None
        self._factory = None if self._backend is not None else backend
        self.template, self.max_new_tokens, self.cache_size, self.name = (
            template,
            max_new_tokens,
            cache_size,
            name,
        )
        self._cache: OrderedDict[str, bool | None] = OrderedDict()
        self._lock = threading.Lock()
        self._in_flight: Future[dict[str, bool | None]] | None = None

    def load(self) -> None:
        """Build the backend now (a no-op when built)."""
        if self._backend is None:
            assert self._factory is not None
            self._backend = self._factory()

    def drain(self) -> None:
        """Wait for a backend call left running by an earlier budget (its verdicts then are cached)."""
        self._wait_for_previous(None)

    def verdicts(self, queries: Sequence[JudgeQuery], budget_s: float | None) -> JudgeResult:
        """The judge's verdict on every query, within ``budget_s`` seconds (None: no limit)."""
        self.load()
        deadline = None if budget_s is None else time.monotonic() + budget_s
        prompts = [render_judge_prompt(self.template, q) for q in queries]
        known = self._lookup(prompts)
        missing = list(dict.fromkeys(p for p in prompts if p not in known))
        result = JudgeResult(verdicts=[None] * len(queries))
        asked: set[str] = set()
        if missing and self._wait_for_previous(deadline):
            known.update(self._lookup(missing))
            missing = [p for p in missing if p not in known]
            if missing and (deadline is None or time.monotonic() < deadline):
                asked = set(missing)
                known.update(self._ask_within(missing, deadline))
        result.asked = len(asked)
        result.cached = sum(1 for p in prompts if p in known and p not in asked)
        for i, prompt in enumerate(prompts):
            verdict = known.get(prompt, _MISSING)
            if verdict is _MISSING:
                result.reasons[i] = OUT_OF_BUDGET
            elif verdict is None:
                result.reasons[i] = UNPARSABLE
            else:
                result.verdicts[i] = bool(verdict)
        return result

    def _lookup(self, prompts: Sequence[str]) -> dict[str, bool | None]:
        with self._lock:
            found = {}
            for prompt in prompts:
                if prompt in self._cache:
                    self._cache.move_to_end(prompt)
                    found[prompt] = self._cache[prompt]
            return found

    def _ask(self, prompts: list[str]) -> dict[str, bool | None]:
        """One backend call for ``prompts``; the parsed verdicts go into the cache and are returned."""
        rows = [
            {"prompt": [{"role": "user", "content": p}], "images": [], "id": f"judge-{i}"}
            for i, p in enumerate(prompts)
        ]
        assert self._backend is not None
        greedy = SamplingParams(max_new_tokens=self.max_new_tokens, temperature=0.0)
        replies = self._backend.generate(rows, sampling=greedy, num_generations=1)
        if len(replies) != len(prompts):
            raise RuntimeError(
                f"the judge backend returned {len(replies)} replies for {len(prompts)} questions"
            )
        verdicts = {p: parse_verdict(r[0] if r else "") for p, r in zip(prompts, replies, strict=True)}
        with self._lock:
            for prompt, verdict in verdicts.items():
                self._cache[prompt] = verdict
                self._cache.move_to_end(prompt)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return verdicts

    def _ask_within(self, prompts: list[str], deadline: float | None) -> dict[str, bool | None]:
        if deadline is None:
            return self._wrap(self._ask, prompts)
        future: Future[dict[str, bool | None]] = Future()
        future.set_running_or_notify_cancel()

        def run() -> None:
            try:
                future.set_result(self._ask(prompts))
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits for the call
                future.set_exception(error)

        # A daemon thread, not an executor: a judge call stuck in native code must not keep the
        # training process from exiting (executors join their threads at exit).
        threading.Thread(target=run, name=f"judge-{self.name}", daemon=True).start()
        self._in_flight = future
        try:
            return self._wrap(future.result, timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            if future.done():  # the backend itself raised TimeoutError: a failure, not the budget
                self._in_flight = None
                raise self._failed(future.exception()) from future.exception()
            logger.warning(
                "judge %s: %d question(s) still open when the budget ran out; counted as failures, "
                "their verdicts will fill the cache",
                self.name,
                len(prompts),
            )
            return {}

    def _wait_for_previous(self, deadline: float | None) -> bool:
        """Wait for a backend call left from an earlier budget; False if it is still running."""
        future, self._in_flight = self._in_flight, None
        if future is None:
            return True
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self._wrap(future.result, timeout=timeout)
        except FutureTimeout:
            if future.done():
                raise self._failed(future.exception()) from future.exception()
            self._in_flight = future
            return False
        return True

    def _wrap(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FutureTimeout:
            raise
        except Exception as error:
            raise self._failed(error) from error

    def _failed(self, error: BaseException | None) -> SkyworkError:
        return SkyworkError(
            f"reward '{self.name}': the judge model failed ({type(error).__name__}: {error}); check "
            "rewards.verifier_model, rewards.verifier_backend and rewards.verifier_backend_kwargs"
        )
