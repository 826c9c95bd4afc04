"""Critical-token entropy (R1V3): how undecided a model is where it pivots its reasoning.

R1V3 (arXiv 2507.06167, "Empirical Analysis on Reinforcement Learning": "Critical Token Entropy
Indicates Reasoning Ability") observes that a model which only imitates long reasoning after
cold-start SFT emits words such as "wait" / "alternatively" with near certainty, while a model
whose reasoning RL has activated is genuinely uncertain at those forks; the entropy there is used
to pick RL checkpoints. The paper gives the idea, not a formula, so the definition here is ours:

    For each generated token y_t that begins a critical word, H_t = -sum_v p(v | x, y_<t) log p(v | x, y_<t),
    the entropy (nats, temperature 1, before top-p) of the next-token distribution that produced
    y_t. The score is the mean of H_t over all such positions of all rollouts (token-level mean).

"Begins a critical word": the token holding the word's first letter in the decoded completion,
matched case-insensitively on word boundaries ("But" and " but" count, "button" does not), so it
works whatever the tokenizer's pieces are (leading-space variants, words split in two).

The pure part (`token_entropies`, `find_critical_positions`, `critical_token_entropy`,
`critical_entropy_from_step_entropies`) needs only tensors and strings; `rollout_critical_entropy`
generates through the project's generation backend (`skywork_rl.generation`), which records each
step's entropy as it goes through a per-step hook.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.generation.transformers_backend import TransformersBackend

DEFAULT_CRITICAL_WORDS: tuple[str, ...] = ("wait", "alternatively", "but", "however", "hmm", "actually")


@dataclass
class CriticalEntropy:
    """Entropies at critical positions (``values``) and the words they belong to."""

    values: list[float] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        """Mean entropy, or None when no critical token was generated (not 0: that would be a claim)."""
        return sum(self.values) / len(self.values) if self.values else None

    def extend(self, other: CriticalEntropy) -> None:
        self.values += other.values
        self.words += other.words
        self.positions += other.positions

    def per_word(self) -> dict[str, dict[str, float]]:
        table: dict[str, list[float]] = {}
        for word, value in zip(self.words, self.values, strict=True):
            table.setdefault(word, []).append(value)
        return {w: {"count": len(v), "mean": sum(v) / len(v)} for w, v in sorted(table.items())}


def token_entropies(logits: Any) -> Any:
    """Entropy (nats) of each row's softmax distribution; ``logits`` [..., V] (log-probs work too)."""
    import torch

    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def _word_pattern(words: Sequence[str]) -> re.Pattern[str]:
    if not words:
        raise ValueError("critical words: the list is empty; give at least one word (e.g. 'wait')")
    alternatives = "|".join(re.escape(w.strip().lower()) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w'])({alternatives})(?![\w'])", re.IGNORECASE)


def find_critical_positions(
    pieces: Sequence[str], words: Sequence[str] = DEFAULT_CRITICAL_WORDS
) -> list[tuple[int, str]]:
    """``(token index, word)`` for each critical word in the text the ``pieces`` spell, in order.

    ``pieces[i]`` is the decoded text of token i (``tokenizer.decode([id])``); the index is the token
    holding the word's first character.
    """
    starts, offset = [], 0
    for piece in pieces:
        starts.append(offset)
        offset += len(piece)
    text = "".join(pieces)
    found: list[tuple[int, str]] = []
    token = 0
    for match in _word_pattern(words).finditer(text):
        while token + 1 < len(starts) and starts[token + 1] <= match.start():
            token += 1
        found.append((token, match.group(1).lower()))
    return found


def token_pieces(tokenizer: Any, token_ids: Sequence[int]) -> list[str]:
    """Each token's own decoded text (special tokens kept, so offsets stay aligned)."""
    return [tokenizer.decode([int(t)], skip_special_tokens=False) for t in token_ids]


def critical_token_entropy(
    logits: Any, token_ids: Sequence[int], tokenizer: Any, words: Sequence[str] = DEFAULT_CRITICAL_WORDS
) -> CriticalEntropy:
    """Critical-token entropy of one completion.

    Args:
        logits: [T, V]; ``logits[t]`` is the distribution that produced ``token_ids[t]`` (for a
            forward pass over prompt + completion, the rows at positions ``prompt_len - 1 ...``;
            for ``generate(output_logits=True)``, ``logits[t]`` of step t).
        token_ids: the T completion tokens (cut at EOS: padding after it must not be passed).
        tokenizer: decodes single tokens.
        words: the critical words.
    """
    if len(token_ids) != logits.shape[0]:
        raise ValueError(f"critical_token_entropy: {len(token_ids)} tokens but {logits.shape[0]} logit rows")
    found = find_critical_positions(token_pieces(tokenizer, token_ids), words)
    if not found:
        return CriticalEntropy()
    positions = [p for p, _ in found]
    entropies = token_entropies(logits[positions]).tolist()
    return CriticalEntropy(values=entropies, words=[w for _, w in found], positions=positions)


def critical_entropy_from_step_entropies(
    entropies: Sequence[float],
    token_ids: Sequence[int],
    tokenizer: Any,
    words: Sequence[str] = DEFAULT_CRITICAL_WORDS,
) -> CriticalEntropy:
    """`critical_token_entropy` when the per-step entropies are already known (``entropies[t]`` of
    the distribution that produced ``token_ids[t]``), e.g. recorded during generation."""
    if len(token_ids) != len(entropies):
        raise ValueError(f"critical_token_entropy: {len(token_ids)} tokens but {len(entropies)} entropies")
    found = find_critical_positions(token_pieces(tokenizer, token_ids), words)
    positions = [p for p, _ in found]
    return CriticalEntropy(
        values=[float(entropies[p]) for p in positions], words=[w for _, w in found], positions=positions
    )


def probe_sampling(max_new_tokens: int = 256, seed: int = 0) -> SamplingParams:
    """The probe rollouts' default sampling (ours): the whole distribution, temperature 1 and top-p 1,
    `max_new_tokens` tokens, seeded by `seed`."""
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=1.0, top_p=1.0, seed=seed)


def rollout_critical_entropy(
    model: Any,
    processor: Any,
    rows: Sequence[dict[str, Any]],
    *,
    sampling: SamplingParams | None = None,
    words: Sequence[str] = DEFAULT_CRITICAL_WORDS,
    num_generations: int = 1,
    batch_size: int = 4,
    progress: str | None = None,
) -> tuple[CriticalEntropy, list[str]]:
    """Generate rollouts for canonical ``rows`` and measure critical-token entropy on them.

    Returns the pooled result and the completion texts. Generation goes through the project's
    `TransformersBackend`, on the model where it is (a training callback's, or one `select`
    loaded), which is left in the train/eval mode it was in. Each step's entropy is that of the
    raw logits (what ``output_logits`` returns: before the generation config's processors,
    temperature and top-p), recorded by the backend's per-step hook (`StepRecorder`) so only
    [B, T] floats are kept; the measure does not depend on the sampling settings, only on which
    path the rollout took. The rollouts are sampled with `sampling` (None: `probe_sampling()`), seeded
    by its ``seed``, and the caller's RNG state is left as it was, so a training loop around it is
    undisturbed.
    """
    was_training = model.training
    try:
        backend = TransformersBackend(
            model, processor, batch_size=batch_size, device=str(next(model.parameters()).device)
        )
        completions = backend.generate_completions(
            rows,
            sampling=sampling or probe_sampling(),
            num_generations=num_generations,
            step_statistic=token_entropies,
            progress=progress,
        )
    finally:
        model.train(was_training)
    result, texts = CriticalEntropy(), []
    for completion in (c for row in completions for c in row):
        assert completion.step_values is not None  # asked for with step_statistic
        result.extend(
            critical_entropy_from_step_entropies(
                completion.step_values, completion.token_ids, backend.tokenizer, words
            )
        )
        texts.append(completion.text)
    return result, texts
