"""Build MPO preference pairs from scored rollouts.

R1V2 (arXiv 2504.16656, MPO section) drives MPO with pairs whose labels come from two signals: a rule-based
check (the final answer verifies against the gold solution) and a reward-model score (Skywork-VL
Reward). This module turns *scored rollouts* -- canonical rows (see `skywork_rl/data/schema.py`) carrying a
list of sampled responses plus, per response, a verification verdict and/or a reward-model score --
into canonical preference rows (``chosen`` / ``rejected`` assistant messages) that TRL's
`DPOTrainer` reads as is.

Input columns (names configurable in `PairRules`):

- ``completions``: list of responses, each a string or assistant messages;
- ``correct``: list of ``True`` / ``False`` / ``None`` (``None`` = could not be verified);
- ``rm_scores``: list of floats or ``None``.

Which response is *chosen* and which *rejected* is decided by `PairRules.criterion`:

- ``verified``: chosen = verified correct, rejected = verified wrong;
- ``reward``: chosen = score >= ``min_chosen_score``, rejected = score <= ``max_rejected_score``;
- ``verified_and_reward``: chosen = correct *and* (if set) score >= ``min_chosen_score``;
  rejected = wrong *or* (if set) score <= ``max_rejected_score``;
- ``margin`` (R1V2's calibrated threshold): chosen = the highest-scored responses, each paired with
  a response scored at least ``min_margin`` below it. R1V2 compares margins of 7, 10 and 15 on the
  Skywork-VL reward model's score: 15 trains stably, 10 peaks and then collapses (reward hacking
  seen as visual hallucination), 7 is worse.

Nothing is silently lost: every prompt or pair that produces no output row is counted under one
reason in `PairStats.dropped` (prompt-level: ``no_rollouts``, ``no_chosen_candidate``,
``no_rejected_candidate``; pair-level: ``identical_chosen_rejected``, ``margin_below_min``,
``duplicate_pair``). Malformed rows (list lengths that disagree) raise `PreferencePairError` naming the
row, since they mean the scoring step is broken, not that the data is unlucky.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from data_prep.pair_selection import margin_candidates, normalized, rule_candidates
from data_prep.refusals import EmptyOutputError
from skywork_rl.data.schema import REQUIRED_COLUMNS, assistant_message, prompt_text, require_columns
from skywork_rl.errors import DataError

Criterion = Literal["verified", "reward", "verified_and_reward", "margin"]
SCORE_CRITERIA = ("reward", "margin")  # decided by reward-model scores alone, no verifier verdict

PROMPT_DROP_REASONS: tuple[str, ...] = ("no_rollouts", "no_chosen_candidate", "no_rejected_candidate")
PAIR_DROP_REASONS: tuple[str, ...] = ("identical_chosen_rejected", "margin_below_min", "duplicate_pair")


class PreferencePairError(DataError):
    """A scored-rollout row is malformed (the scoring step that wrote it is broken)."""


class PairRulesError(DataError):
    """The pairing rules ask for something the data cannot provide (checked before any generation)."""


class NoPairsError(PairRulesError, EmptyOutputError):
    """No pair survived the rules: nothing is saved (an empty preference set is a failed curation)."""


@dataclass
class PairRules:
    """How scored rollouts become preference pairs (the recipe's ``pairs`` group)."""

    criterion: Criterion = field(
        default="verified",
        metadata={
            "help": "'verified' (rule check), 'reward' (RM score thresholds), 'verified_and_reward' (both) or "
            "'margin' (R1V2: best-scored responses against ones at least min_margin lower)."
        },
    )
    min_chosen_score: float | None = field(
        default=None, metadata={"help": "A chosen response must score at least this (reward criteria)."}
    )
    max_rejected_score: float | None = field(
        default=None, metadata={"help": "A response scoring at most this may be rejected (reward criteria)."}
    )
    min_margin: float = field(
        default=0.0,
        metadata={
            "help": "When both responses are scored, chosen_score - rejected_score must be >= this: R1V2's "
            "calibrated threshold on the reward-model score (the paper compares 7, 10 and 15)."
        },
    )
    pairs_per_prompt: int = field(default=1, metadata={"help": "At most this many pairs per prompt."})
    rejected_pick: Literal["hardest", "worst"] = field(
        default="hardest",
        metadata={
            "help": "Order of rejected candidates: 'hardest' = highest RM score first (a convincing wrong "
            "answer is the most informative negative; under 'margin', the highest still min_margin below "
            "the chosen), 'worst' = lowest first."
        },
    )
    completions_column: str = "completions"
    correct_column: str = "correct"
    score_column: str = "rm_scores"

    def __post_init__(self) -> None:
        if self.criterion not in ("verified", "reward", "verified_and_reward", "margin"):
            raise ValueError(f"pairs.criterion: unknown value {self.criterion!r}")
        if self.criterion == "margin" and (
            self.min_chosen_score is not None or self.max_rejected_score is not None
        ):
            raise ValueError(
                "pairs: criterion 'margin' pairs responses by their score difference (pairs.min_margin); "
                "min_chosen_score / max_rejected_score belong to 'reward' and 'verified_and_reward'"
            )
        if self.criterion == "reward" and (self.min_chosen_score is None or self.max_rejected_score is None):
            raise ValueError(
                "pairs: criterion 'reward' needs both min_chosen_score and max_rejected_score "
                "(there is no verifier verdict to fall back on)"
            )
        if self.pairs_per_prompt < 1:
            raise ValueError(f"pairs.pairs_per_prompt must be >= 1, got {self.pairs_per_prompt}")
        if self.rejected_pick not in ("hardest", "worst"):
            raise ValueError(f"pairs.rejected_pick: unknown value {self.rejected_pick!r}")


def check_scores_available(
    rules: PairRules, columns: Sequence[str], where: str, can_score: bool = False
) -> None:
    """Fail before any rollout is sampled when the rules use reward-model scores nothing provides.

    Scores come from the input's ``score_column`` or from the stage's reward model (``can_score``).
    Without either, a score threshold would silently reject every candidate (or, under the score
    criteria, fail only after all generation).
    """
    if rules.score_column in columns or can_score:
        return
    uses = [
        name
        for name, used in (
            (f"pairs.criterion={rules.criterion!r}", rules.criterion in SCORE_CRITERIA),
            ("pairs.min_chosen_score", rules.min_chosen_score is not None),
            ("pairs.max_rejected_score", rules.max_rejected_score is not None),
            ("pairs.min_margin", rules.min_margin > 0),
        )
        if used
    ]
    if uses:
        raise PairRulesError(
            f"{where}: {', '.join(uses)} need(s) reward-model scores, but the input has no "
            f"{rules.score_column!r} column (pairs.score_column) and no reward model is set; set "
            "reward_model.name_or_path (the stage then scores every rollout), or use pairs.criterion: "
            "verified without score thresholds"
        )


@dataclass
class PreferencePair:
    """One output pair, pointing back at the row it came from."""

    row_index: int
    pair_index: int
    chosen: str
    rejected: str
    chosen_score: float | None
    rejected_score: float | None


@dataclass
class PairStats:
    """What went in, what came out, and why the rest was dropped."""

    prompts: int = 0
    pairs: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def as_metrics(self, prefix: str = "pairs/") -> dict[str, float]:
        metrics = {f"{prefix}prompts": float(self.prompts), f"{prefix}pairs": float(self.pairs)}
        for reason in (*PROMPT_DROP_REASONS, *PAIR_DROP_REASONS):
            metrics[f"{prefix}dropped/{reason}"] = float(self.dropped.get(reason, 0))
        return metrics


def response_text(response: Any, where: str) -> str:
    """The text of a response given as a string or as assistant messages."""
    if isinstance(response, str):
        return response
    if isinstance(response, dict):
        response = [response]
    if isinstance(response, Sequence):
        texts: list[str] = []
        for message in response:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, Sequence):
                texts.extend(p.get("text") or "" for p in content if p.get("type") == "text")
            else:
                raise PreferencePairError(f"{where}: a message has no 'content': {message!r}")
        return "".join(texts)
    raise PreferencePairError(
        f"{where}: a response must be a string or assistant messages, got {type(response)}"
    )


def _image_digest(image: Any) -> bytes:
    """A digest of one image (PIL, or the ``{"bytes", "path"}`` dict of an undecoded `datasets.Image`)."""
    if image is None:
        return b"none"
    if isinstance(image, dict):
        payload = image.get("bytes") or (image.get("path") or "").encode()
        return hashlib.sha1(payload).digest()
    if hasattr(image, "tobytes"):
        buf = io.BytesIO()
        buf.write(f"{image.mode}{image.size}".encode())
        buf.write(image.tobytes())
        return hashlib.sha1(buf.getvalue()).digest()
    return hashlib.sha1(repr(image).encode()).digest()


def _prompt_key(row: dict[str, Any]) -> bytes:
    h = hashlib.sha1(prompt_text(row.get("prompt") or []).encode())
    for image in row.get("images") or []:
        h.update(_image_digest(image))
    return h.digest()


def _row_where(row: dict[str, Any], index: int) -> str:
    return f"scored rollouts row {index} (source={row.get('source')!r}, id={row.get('id')!r})"


def build_pairs(rows: Iterable[dict[str, Any]], rules: PairRules) -> tuple[list[PreferencePair], PairStats]:
    """Select chosen/rejected responses per scored row, dedup the pairs and count every drop.

    Chosen candidates are ranked by score (highest first; unscored last, then rollout order);
    rejected candidates by `PairRules.rejected_pick`. The k-th chosen is paired with the k-th
    rejected, up to ``pairs_per_prompt``. A response that qualifies for both sides (possible under
    ``verified_and_reward``: correct but low-scored) is only used as chosen. Under ``margin`` see
    `data_prep.pair_selection.margin_candidates`.
    """
    stats = PairStats()
    pairs: list[PreferencePair] = []
    seen: set[bytes] = set()
    for index, row in enumerate(rows):
        stats.prompts += 1
        where = _row_where(row, index)
        responses = row.get(rules.completions_column) or []
        n = len(responses)
        correct = row.get(rules.correct_column)
        scores = row.get(rules.score_column)
        if correct is None and rules.criterion not in SCORE_CRITERIA:
            raise PreferencePairError(
                f"{where}: criterion {rules.criterion!r} needs column {rules.correct_column!r}"
            )
        if scores is None and rules.criterion in SCORE_CRITERIA:
            raise PreferencePairError(
                f"{where}: criterion {rules.criterion!r} needs column {rules.score_column!r}"
            )
        correct = list(correct) if correct is not None else [None] * n
        scores = list(scores) if scores is not None else [None] * n
        if not (len(correct) == len(scores) == n):
            raise PreferencePairError(
                f"{where}: {n} {rules.completions_column}, {len(correct)} {rules.correct_column}, "
                f"{len(scores)} {rules.score_column}; each response needs one verdict and one score (None allowed)"
            )
        if n == 0:
            stats.dropped["no_rollouts"] += 1
            continue
        texts = [response_text(r, f"{where}, response {i}") for i, r in enumerate(responses)]
        if rules.criterion == "margin":
            candidates = margin_candidates(texts, scores, rules, stats.dropped)
        else:
            candidates = rule_candidates(correct, scores, rules, stats.dropped)
        prompt_key = _prompt_key(row)
        for k, (c, r) in enumerate(candidates):
            if normalized(texts[c]) == normalized(texts[r]):
                stats.dropped["identical_chosen_rejected"] += 1
                continue
            if scores[c] is not None and scores[r] is not None and scores[c] - scores[r] < rules.min_margin:
                stats.dropped["margin_below_min"] += 1
                continue
            key = hashlib.sha1(
                prompt_key + b"\0" + normalized(texts[c]).encode() + b"\0" + normalized(texts[r]).encode()
            ).digest()
            if key in seen:
                stats.dropped["duplicate_pair"] += 1
                continue
            seen.add(key)
            pairs.append(PreferencePair(index, k, texts[c], texts[r], scores[c], scores[r]))
    stats.pairs = len(pairs)
    return pairs, stats


def build_preference_dataset(scored: Any, rules: PairRules) -> tuple[Any, PairStats]:
    """`build_pairs` over a `datasets.Dataset`, returning canonical preference rows; raises
    `NoPairsError` (with the drop counts) when no pair survives.

    Output rows keep the source row's canonical columns (``prompt``, ``images``, ``solution``,
    ``source``), get ``chosen`` / ``rejected`` assistant messages and their scores, and an ``id``
    made unique per pair (``<id>/pair<k>``). Images are hashed for dedup from their stored bytes
    (no decoding) and the output reuses the stored images via `Dataset.select`.
    """
    from datasets import Image, List

    require_columns(scored.column_names, (*REQUIRED_COLUMNS, rules.completions_column), "scored rollouts")
    view = scored
    if isinstance(scored.features.get("images"), List) and isinstance(
        scored.features["images"].feature, Image
    ):
        view = scored.cast_column("images", List(Image(decode=False)))
    pairs, stats = build_pairs(view, rules)
    if not pairs:  # an empty preference set is a failed curation, never a result to train on
        dropped = ", ".join(f"{k}={n}" for k, n in sorted(stats.dropped.items())) or "none"
        raise NoPairsError(
            f"pairs: 0 preference pairs from {stats.prompts} prompts (dropped: {dropped}); nothing was saved. "
            f"Loosen pairs.criterion={rules.criterion!r} or its thresholds, or sample more rollouts "
            "(saved rollout chunks are reused)"
        )
    rollout_columns = [
        c
        for c in (rules.completions_column, rules.correct_column, rules.score_column)
        if c in scored.column_names
    ]
    out = scored.select([p.row_index for p in pairs]).remove_columns(rollout_columns)
    source_ids = list(scored.select_columns(["id"])["id"])
    ids = [f"{source_ids[p.row_index]}/pair{p.pair_index}" for p in pairs]
    out = out.remove_columns("id").add_column("id", ids)
    out = out.add_column("chosen", [assistant_message(p.chosen) for p in pairs])
    out = out.add_column("rejected", [assistant_message(p.rejected) for p in pairs])
    out = out.add_column("chosen_score", [p.chosen_score for p in pairs])
    out = out.add_column("rejected_score", [p.rejected_score for p in pairs])
    return out, stats
