"""Evaluation profiles: the sampling settings a published number was measured with.

- ``r1v3`` (the default): Skywork-R1V3's evaluation — "16K-token budget, temperature 1.0,
  accuracy averaged over 5 samples (avg@5)" (paper 2507.06167; ``shared/PAPERS.md``). The paper
  gives no top-p; 1.0 (ours) samples from the untruncated distribution the temperature describes.
- ``skywork-release``: the defaults of Skywork's released inference script
  (SkyworkAI/Skywork-R1V ``inference/inference_with_vllm.py``: ``--temperature 0.0``,
  ``--top_p 0.95``, ``--repetition_penalty 1.05``, ``--max_tokens 8000``). Greedy decoding gives
  one answer per item, so one sample (ours: k samples would repeat it).

Any explicit flag (or ``--config`` key) wins over the profile's value; ``report.json`` records the
profile and the settings actually used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EvalProfile:
    """Sampling settings of one published evaluation, and where they come from."""

    max_new_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    num_samples: int
    source: str

    def settings(self) -> dict[str, Any]:
        """The profile's values by option name (without ``source``)."""
        return {k: v for k, v in asdict(self).items() if k != "source"}


PROFILES: dict[str, EvalProfile] = {
    "r1v3": EvalProfile(
        max_new_tokens=16384,
        temperature=1.0,
        top_p=1.0,
        repetition_penalty=1.0,
        num_samples=5,
        source="Skywork-R1V3 paper: 16K tokens, temperature 1.0, avg@5 (top-p not given: 1.0, ours)",
    ),
    "skywork-release": EvalProfile(
        max_new_tokens=8000,
        temperature=0.0,
        top_p=0.95,
        repetition_penalty=1.05,
        num_samples=1,
        source="SkyworkAI/Skywork-R1V inference/inference_with_vllm.py defaults (greedy: 1 sample, ours)",
    ),
}
DEFAULT_PROFILE = "r1v3"


def resolve_sampling(profile: str, explicit: dict[str, Any]) -> dict[str, Any]:
    """The profile's settings with every explicitly given (non-None) option replacing its value."""
    if profile not in PROFILES:
        raise KeyError(f"unknown eval profile {profile!r}; choose from {', '.join(PROFILES)}")
    values = PROFILES[profile].settings()
    values.update({k: v for k, v in explicit.items() if k in values and v is not None})
    return values
