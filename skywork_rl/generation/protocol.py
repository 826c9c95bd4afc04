"""Generation backends for everything outside the GRPO trainer: curation rollouts, distillation, eval.

One protocol so the pass-rate filter, the distiller, the eval runner, periodic eval and `select`
do not care whether text comes from transformers on a CPU (`transformers_backend`) or from vLLM on
GPUs (`vllm_backend`); `backends.make_backend` builds one by name. Rows are canonical
(skywork_rl/data/schema.py): the backend renders `prompt` with the processor's chat template and feeds
`images` alongside.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger("skywork_rl")


@dataclass
class SamplingParams:
    """Sampling settings shared by every backend (the papers' evaluation settings: `eval.profiles`).

    The one home of their defaults: every caller passes one of these to a backend's `generate`, and
    no backend, protocol or request builder restates a default.
    """

    max_new_tokens: int = 512
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0
    # 1.0 = off; Skywork's released inference uses 1.05 (eval profile "skywork-release")
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        """Temperature 0: one greedy answer per prompt, repeated when several are asked for (neither
        transformers nor vLLM samples n > 1 without sampling); top-p and seed do not apply."""
        return self.temperature <= 0


class Generations(list):
    """`generate`'s result: one list of texts per row, in row order.

    A row the backend could not generate for (vLLM: a prompt longer than ``max_model_len``, more
    images than it accepts) has an *empty* list, never placeholder texts, and ``skipped`` maps its
    position to the reason (``prompt_too_long``, ``too_many_images``). Callers count such rows and
    never score them: an empty answer scored as wrong would hide that the row was never seen.
    """

    def __init__(self, texts: Iterable[list[str]] = (), skipped: dict[int, str] | None = None) -> None:
        super().__init__(texts)
        self.skipped: dict[int, str] = dict(skipped or {})


def not_generated(result: Sequence[Sequence[str]]) -> dict[int, str]:
    """Positions of the rows that got no completion, with the reason: a `Generations`' ``skipped``
    entries, and ``no_completions`` for an empty list any other backend returned."""
    reasons = getattr(result, "skipped", {})
    return {i: reasons.get(i, "no_completions") for i, texts in enumerate(result) if not texts}


@runtime_checkable
class GenerationBackend(Protocol):
    """Anything that turns canonical rows into `num_generations` completion texts per row (a row it
    cannot generate for gets an empty list: see `Generations`)."""

    def generate(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        sampling: SamplingParams | None = None,
        num_generations: int = 1,
    ) -> list[list[str]]:
        """`num_generations` completions per row sampled with `sampling` (None: `SamplingParams()`)."""
        ...


def images_of(row: dict[str, Any]) -> list[Any]:
    """A canonical row's images (``images``, or the one ``image``), as RGB."""
    images = row.get("images")
    if images is None and row.get("image") is not None:
        images = [row["image"]]
    return [img.convert("RGB") if hasattr(img, "convert") else img for img in (images or [])]
