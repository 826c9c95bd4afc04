"""Selective Sample Buffer (SSB) from Skywork R1V2 (arXiv 2504.16656, section "Selective Sample Buffer").

GRPO's advantage is a sample's reward minus its group's mean: when every rollout of a prompt earns
the same reward the whole group's advantages vanish and it adds nothing to the policy gradient.
R1V2 counters this by caching samples whose advantage is non-zero and re-introducing them into later
policy updates, drawn by weighted sampling on their absolute advantage. This module is that cache and
nothing else: no model, no torch. A sample's payload is opaque (the trainer stores the tensors it needs
to re-forward it); the buffer only sees its advantage, the step it was produced at and an optional
``kind`` so samples are only mixed into batches with the same fields.

Where the paper is silent we chose, and say why:

* Priority ``|A| ** priority_exponent`` (exponent 1 = the paper's "weighted by absolute advantage";
  0 = uniform), sampled without replacement within one draw (Efraimidis-Spirakis keys, so the draw is
  exact and reproducible from one ``random.Random``).
* Eviction when full drops the *oldest* samples first (FIFO): the oldest are the most off-policy, and
  priority already decides what gets replayed.
* Staleness: samples older than ``max_age`` optimizer steps are dropped before every draw, bounding
  how far the replayed behaviour policy lags the current one.
* A drawn sample stays in the buffer (it may be replayed again until it ages out or is evicted), as
  in prioritized experience replay.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BufferedSample:
    """One cached sample: its payload, |advantage| > threshold, the optimizer step it was produced at."""

    payload: Any
    advantage: float
    step: int
    uid: int
    kind: Hashable = None


class SelectiveSampleBuffer:
    """Bounded cache of informative samples, replayed by priority ``|advantage| ** priority_exponent``.

    Args:
        capacity: most samples held; pushing beyond it evicts the oldest.
        priority_exponent: ``alpha`` in ``P(i) ∝ |A_i| ** alpha``; 1 follows R1V2, 0 is uniform.
        max_age: samples produced more than this many optimizer steps ago are dropped before a draw
            (``None``: never stale).
        advantage_threshold: samples with ``|A| <= advantage_threshold`` are uninformative and not kept.
        seed: seed of the buffer's own random stream, so draws are reproducible and checkpointable.
    """

    def __init__(
        self,
        capacity: int,
        *,
        priority_exponent: float = 1.0,
        max_age: int | None = None,
        advantage_threshold: float = 1e-3,
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"SelectiveSampleBuffer: capacity must be >= 1, got {capacity}")
        if priority_exponent < 0:
            raise ValueError(
                f"SelectiveSampleBuffer: priority_exponent must be >= 0, got {priority_exponent}"
            )
        if max_age is not None and max_age < 0:
            raise ValueError(f"SelectiveSampleBuffer: max_age must be >= 0 or None, got {max_age}")
        if advantage_threshold < 0:
            raise ValueError(
                f"SelectiveSampleBuffer: advantage_threshold must be >= 0, got {advantage_threshold}"
            )
        self.capacity = capacity
        self.priority_exponent = priority_exponent
        self.max_age = max_age
        self.advantage_threshold = advantage_threshold
        self._rng = random.Random(seed)
        self._samples: list[BufferedSample] = []  # insertion order: oldest first
        self._next_uid = 0

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def samples(self) -> tuple[BufferedSample, ...]:
        """The held samples, oldest first (read-only view for metrics and tests)."""
        return tuple(self._samples)

    def is_informative(self, advantage: float) -> bool:
        """Whether a sample with this advantage carries learning signal (and would be kept)."""
        return math.isfinite(advantage) and abs(advantage) > self.advantage_threshold

    def push(
        self, payloads: Sequence[Any], advantages: Sequence[float], *, step: int, kind: Hashable = None
    ) -> int:
        """Cache the informative ones of ``payloads`` (paired with ``advantages``); returns how many were kept."""
        if len(payloads) != len(advantages):
            raise ValueError(
                f"SelectiveSampleBuffer.push: {len(payloads)} payloads but {len(advantages)} advantages"
            )
        kept = 0
        for payload, advantage in zip(payloads, advantages, strict=True):
            advantage = float(advantage)
            if not self.is_informative(advantage):
                continue
            self._samples.append(BufferedSample(payload, advantage, int(step), self._next_uid, kind))
            self._next_uid += 1
            kept += 1
        overflow = len(self._samples) - self.capacity
        if overflow > 0:
            del self._samples[:overflow]
        return kept

    def evict_stale(self, step: int) -> int:
        """Drop samples older than ``max_age`` steps at ``step``; returns how many were dropped."""
        if self.max_age is None:
            return 0
        before = len(self._samples)
        self._samples = [s for s in self._samples if step - s.step <= self.max_age]
        return before - len(self._samples)

    def count(self, kind: Hashable = None, *, any_kind: bool = False) -> int:
        """How many held samples have ``kind`` (or all of them with ``any_kind=True``)."""
        if any_kind:
            return len(self._samples)
        return sum(1 for s in self._samples if s.kind == kind)

    def probabilities(self, kind: Hashable = None) -> list[float]:
        """Replay probability of each held sample of ``kind`` (oldest first) for a single draw."""
        weights = [self._weight(s) for s in self._samples if s.kind == kind]
        total = sum(weights)
        return [w / total for w in weights] if total > 0 else []

    def sample(self, k: int, *, step: int, kind: Hashable = None) -> list[BufferedSample]:
        """Draw up to ``k`` distinct non-stale samples of ``kind``, with probability ∝ priority.

        Stale samples are evicted first. Returns fewer than ``k`` when fewer are held.
        """
        if k < 0:
            raise ValueError(f"SelectiveSampleBuffer.sample: k must be >= 0, got {k}")
        self.evict_stale(step)
        candidates = [s for s in self._samples if s.kind == kind]
        if k == 0 or not candidates:
            return []
        # Efraimidis-Spirakis: the k largest u ** (1 / w) form an exact weighted draw without
        # replacement; compared in log space (log(u) / w) to stay stable for tiny weights.
        keys = [math.log(1.0 - self._rng.random()) / self._weight(s) for s in candidates]
        order = sorted(range(len(candidates)), key=lambda i: keys[i], reverse=True)
        return [candidates[i] for i in order[:k]]

    def _weight(self, sample: BufferedSample) -> float:
        return abs(sample.advantage) ** self.priority_exponent

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: samples (payloads as given), counters and the random stream.

        Only plain containers, numbers, strings and the payloads, so ``torch.load(weights_only=True)``
        can read it back when payloads are tensors.
        """
        return {
            "capacity": self.capacity,
            "samples": [
                {"payload": s.payload, "advantage": s.advantage, "step": s.step, "uid": s.uid, "kind": s.kind}
                for s in self._samples
            ],
            "next_uid": self._next_uid,
            "rng_state": self._rng.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the buffer's own options (capacity, age, ...) stay as built."""
        missing = {"samples", "next_uid", "rng_state"} - set(state)
        if missing:
            raise ValueError(f"SelectiveSampleBuffer.load_state_dict: state lacks {sorted(missing)}")
        self._samples = [
            BufferedSample(
                s["payload"], float(s["advantage"]), int(s["step"]), int(s["uid"]), _as_kind(s["kind"])
            )
            for s in state["samples"]
        ]
        if len(self._samples) > self.capacity:  # resumed with a smaller capacity: keep the newest
            del self._samples[: len(self._samples) - self.capacity]
        self._next_uid = int(state["next_uid"])
        self._rng.setstate(_as_rng_state(state["rng_state"]))


def _as_kind(kind: Any) -> Hashable:
    """Kinds are tuples of field names; a round-trip through some serializers turns them into lists."""
    return tuple(_as_kind(k) for k in kind) if isinstance(kind, list) else kind


def _as_rng_state(state: Iterable[Any]) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
