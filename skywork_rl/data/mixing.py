"""Balanced multi-domain sampling: mix several datasets by per-domain proportions or caps.

R1V3 (arXiv 2507.06167) tunes only the connector after RL on a small set *balanced across
domains* so that no single domain (math, after math-heavy RL) dominates again. This module builds
such a set from several canonical datasets with `datasets` itself:

- ``caps`` bound each domain (a shuffled ``select`` of the first N rows);
- ``total`` + ``proportions``: exact per-domain quotas (largest-remainder rounding), a domain
  short of its quota is repeated (``oversample``) or contributes what it has, then
  `datasets.concatenate_datasets` + shuffle;
- ``proportions`` without ``total``: `datasets.interleave_datasets` with those probabilities and
  the configured stopping strategy (``first_exhausted``: stop when a domain runs out);
- neither: concatenate the (capped) domains.

The result counts rows per domain (logged, and returned as metrics) so a recipe's balance is
visible in ``stage.json``. Importable without torch.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

logger = logging.getLogger("skywork_rl")

_DOMAIN_COLUMN = "__mix_domain"


class MixingError(ValueError):
    """The mixing recipe is inconsistent with the datasets given (names the domain and the fix)."""


@dataclass
class MixOptions:
    """Recipe group ``mix:`` — how the domains are balanced."""

    proportions: dict[str, float] | None = field(
        default=None,
        metadata={"help": "Relative weight per domain (normalised); omit for plain concatenation."},
    )
    caps: dict[str, int] | None = field(default=None, metadata={"help": "At most N rows from a domain."})
    total: int | None = field(
        default=None, metadata={"help": "Exact size of the mix (needs proportions; quotas are exact)."}
    )
    oversample: bool = field(
        default=False, metadata={"help": "With total: repeat a domain's rows when it is short of its quota."}
    )
    stopping_strategy: Literal["first_exhausted", "all_exhausted", "all_exhausted_without_replacement"] = (
        field(
            default="first_exhausted",
            metadata={"help": "interleave_datasets' strategy (proportions without total)."},
        )
    )
    seed: int = field(default=0, metadata={"help": "Shuffle / sampling seed."})
    absent: Literal["error", "empty"] = field(
        default="error",
        metadata={
            "help": "A domain named in proportions that the data has no row of: 'error' (a typo, the default) "
            "or 'empty' (it gives 0 rows, with a warning and mix/<domain> = 0 in the metrics: for data filtered "
            "upstream, e.g. verified traces, whose domain names an earlier stage already checked)."
        },
    )


@dataclass
class MixResult:
    """The mixed dataset and its per-domain accounting."""

    dataset: Any
    counts: dict[str, int]
    available: dict[str, int]

    def as_metrics(self, prefix: str = "mix/") -> dict[str, float]:
        metrics = {f"{prefix}rows": float(len(self.dataset))}
        for domain, n in sorted(self.counts.items()):
            metrics[f"{prefix}{domain}"] = float(n)
        return metrics


def quotas(total: int, proportions: Mapping[str, float]) -> dict[str, int]:
    """Split `total` rows by `proportions` exactly (largest remainder; ties by domain order)."""
    if total < 0:
        raise MixingError(f"mix.total must be >= 0, got {total}")
    weight_sum = sum(proportions.values())
    if weight_sum <= 0 or any(w < 0 for w in proportions.values()):
        raise MixingError(
            f"mix.proportions must be non-negative with a positive sum, got {dict(proportions)}"
        )
    raw = {d: total * w / weight_sum for d, w in proportions.items()}
    out = {d: math.floor(v) for d, v in raw.items()}
    order = sorted(raw, key=lambda d: -(raw[d] - out[d]))
    for d in order[: total - sum(out.values())]:
        out[d] += 1
    return out


def _check(domains: Mapping[str, Any], options: MixOptions) -> None:
    if not domains:
        raise MixingError("mix: no domains given")
    for key in ("proportions", "caps"):
        named = getattr(options, key) or {}
        unknown = sorted(set(named) - set(domains))
        if unknown:
            raise MixingError(f"mix.{key}: unknown domain(s) {unknown}; domains are {sorted(domains)}")
    if options.proportions is not None:
        missing = sorted(set(domains) - set(options.proportions))
        if missing:
            raise MixingError(f"mix.proportions: no weight for domain(s) {missing} (give 0 to leave one out)")
    if options.total is not None and options.proportions is None:
        raise MixingError("mix.total needs mix.proportions (how to split the total between domains)")
    first_name, first = next(iter(domains.items()))
    for name, ds in domains.items():
        if ds.features != first.features:
            keys = set(ds.features) | set(first.features)
            diff = sorted(k for k in keys if ds.features.get(k) != first.features.get(k))
            raise MixingError(
                f"mix: domain {name!r} has different columns/features than {first_name!r} "
                f"(differing: {diff}); map both onto the canonical schema first"
            )


def _with_absent_domains(domains: Mapping[str, Any], options: MixOptions) -> Mapping[str, Any]:
    """`domains` plus an empty dataset for each domain `proportions` names that has no rows, when the
    recipe says such a domain is `absent: empty` (warned: the mix is then short of that domain)."""
    absent = [d for d in (options.proportions or {}) if d not in domains]
    if options.absent != "empty" or not absent or not domains:
        return domains
    logger.warning(
        "mix: domain(s) %s have no rows in this data (mix.absent: empty); they give 0 rows, so the mix "
        "is short of them. Domains present: %s",
        absent,
        sorted(domains),
    )
    first = next(iter(domains.values()))
    return {**domains, **{d: first.select([]) for d in absent}}


def _repeat_to(ds: Any, n: int, seed: int) -> Any:
    """`n` rows of `ds`: a shuffled prefix, or whole copies plus a shuffled prefix when `n` > len."""
    from datasets import concatenate_datasets

    shuffled = ds.shuffle(seed=seed)
    if n <= len(ds):
        return shuffled.select(range(n))
    copies, rest = divmod(n, len(ds))
    return concatenate_datasets([shuffled] * copies + [shuffled.select(range(rest))])


def mix_domains(domains: Mapping[str, Any], options: MixOptions) -> MixResult:
    """Mix `domains` (name -> `datasets.Dataset`, same features) as `options` says; see the module doc."""
    from datasets import concatenate_datasets, interleave_datasets

    domains = _with_absent_domains(domains, options)
    _check(domains, options)
    caps = options.caps or {}
    tagged: dict[str, Any] = {}
    for i, (name, ds) in enumerate(domains.items()):
        ds = ds.add_column(_DOMAIN_COLUMN, [name] * len(ds))
        if name in caps and caps[name] < len(ds):
            ds = ds.shuffle(seed=options.seed + i).select(range(max(caps[name], 0)))
        tagged[name] = ds
    available = {name: len(ds) for name, ds in tagged.items()}

    if options.total is not None:
        parts = []
        for i, (name, want) in enumerate(quotas(options.total, options.proportions or {}).items()):
            ds = tagged[name]
            if want > len(ds) and not options.oversample:
                logger.warning(
                    "mix: domain %r has %d rows for a quota of %d; using all of them (set mix.oversample "
                    "to repeat rows instead)",
                    name,
                    len(ds),
                    want,
                )
                want = len(ds)
            if want > 0 and len(ds) == 0:
                raise MixingError(f"mix: domain {name!r} is empty but its quota is {want}")
            if want > 0:
                parts.append(_repeat_to(ds, want, options.seed + i))
        mixed = concatenate_datasets(parts).shuffle(seed=options.seed)
    elif options.proportions is not None:
        names = [n for n in tagged if options.proportions[n] > 0 and len(tagged[n]) > 0]
        weight_sum = sum(options.proportions[n] for n in names)
        mixed = interleave_datasets(
            [tagged[n] for n in names],
            probabilities=[options.proportions[n] / weight_sum for n in names],
            seed=options.seed,
            stopping_strategy=options.stopping_strategy,
        )
    else:
        mixed = concatenate_datasets(list(tagged.values())).shuffle(seed=options.seed)

    counts = Counter(mixed[_DOMAIN_COLUMN])
    result = MixResult(
        dataset=mixed.remove_columns(_DOMAIN_COLUMN),
        counts={name: counts.get(name, 0) for name in domains},
        available=available,
    )
    logger.info("mix: %d rows; per domain %s (available after caps %s)", len(mixed), result.counts, available)
    return result
