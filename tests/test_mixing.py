"""Balanced multi-domain mixing with datasets' concatenate/interleave."""

from __future__ import annotations

import logging

import pytest
from datasets import Dataset

from skywork_rl.data.mixing import MixingError, MixOptions, mix_domains, quotas


def _domain(name: str, n: int) -> Dataset:
    return Dataset.from_dict({"id": [f"{name}-{i}" for i in range(n)], "source": [name] * n})


@pytest.fixture
def domains() -> dict[str, Dataset]:
    return {"math": _domain("math", 100), "chart": _domain("chart", 30), "science": _domain("science", 10)}


def test_quotas_split_total_exactly_by_largest_remainder():
    assert quotas(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert sum(quotas(97, {"a": 0.5, "b": 0.3, "c": 0.2}).values()) == 97


def test_caps_bound_each_domain_and_counts_are_reported(domains):
    result = mix_domains(domains, MixOptions(caps={"math": 10, "chart": 10}))
    assert result.counts == {"math": 10, "chart": 10, "science": 10}
    assert len(result.dataset) == 30
    assert "__mix_domain" not in result.dataset.column_names
    assert result.as_metrics()["mix/math"] == 10.0


def test_total_with_proportions_gives_exact_balanced_quotas(domains):
    result = mix_domains(
        domains, MixOptions(proportions={"math": 1, "chart": 1, "science": 1}, total=24, oversample=True)
    )
    assert result.counts == {"math": 8, "chart": 8, "science": 8}
    ids = result.dataset["id"]
    assert len(set(i for i in ids if i.startswith("math"))) == 8  # no repeats where rows suffice


def test_short_domain_without_oversample_contributes_what_it_has_and_warns(domains, caplog):
    with caplog.at_level(logging.WARNING, logger="skywork_rl"):
        result = mix_domains(domains, MixOptions(proportions={"math": 1, "chart": 1, "science": 2}, total=40))
    assert result.counts == {"math": 10, "chart": 10, "science": 10}
    assert "science" in caplog.text and "quota of 20" in caplog.text


def test_oversample_repeats_short_domain_rows(domains):
    result = mix_domains(
        domains, MixOptions(proportions={"math": 0, "chart": 0, "science": 1}, total=25, oversample=True)
    )
    assert result.counts["science"] == 25
    assert set(result.dataset["id"]) == {f"science-{i}" for i in range(10)}


def test_proportions_without_total_interleave_until_first_domain_is_exhausted(domains):
    result = mix_domains(domains, MixOptions(proportions={"math": 0.6, "chart": 0.3, "science": 0.1}, seed=1))
    counts = result.counts
    assert sum(counts.values()) == len(result.dataset)
    # first_exhausted: some domain was used up completely, none beyond its size
    assert any(counts[d] == len(domains[d]) for d in domains)
    assert all(counts[d] <= len(domains[d]) for d in domains)
    assert counts["math"] > counts["science"]


def test_mix_is_deterministic_for_a_seed(domains):
    opts = MixOptions(proportions={"math": 2, "chart": 1, "science": 1}, total=20, seed=3)
    assert mix_domains(domains, opts).dataset["id"] == mix_domains(domains, opts).dataset["id"]


def test_unknown_domain_in_recipe_is_an_error_naming_it(domains):
    with pytest.raises(MixingError, match=r"mix.caps: unknown domain\(s\) \['code'\]"):
        mix_domains(domains, MixOptions(caps={"code": 5}))


def test_missing_proportion_and_total_without_proportions_are_errors(domains):
    with pytest.raises(MixingError, match="no weight for domain"):
        mix_domains(domains, MixOptions(proportions={"math": 1}))
    with pytest.raises(MixingError, match="total needs mix.proportions"):
        mix_domains(domains, MixOptions(total=10))


def test_domains_with_different_columns_are_rejected_by_name(domains):
    odd = Dataset.from_dict({"id": ["x"], "question": ["?"]})
    with pytest.raises(MixingError, match="domain 'odd'"):
        mix_domains({**domains, "odd": odd}, MixOptions())


def test_a_domain_the_data_lacks_is_an_error_unless_the_recipe_says_absent_empty(domains, caplog):
    """R1V3's connector data are verified traces: a domain whose every trace failed has no rows at the
    connector stage (found by the paper pipeline's rehearsal). By default that is still a typo-style
    error; `absent: empty` gives it 0 rows, warned and counted, and keeps the others' quotas."""
    weights = {"math": 1, "chart": 1, "science": 1, "geometry": 1}
    with pytest.raises(MixingError, match=r"mix.proportions: unknown domain\(s\) \['geometry'\]"):
        mix_domains(domains, MixOptions(proportions=weights, total=8))
    with caplog.at_level(logging.WARNING, logger="skywork_rl"):
        result = mix_domains(domains, MixOptions(proportions=weights, total=8, absent="empty"))
    assert result.counts == {"math": 2, "chart": 2, "science": 2, "geometry": 0}
    assert result.as_metrics()["mix/geometry"] == 0.0
    assert "['geometry'] have no rows" in caplog.text
    with pytest.raises(MixingError, match="'geometry' is empty but its quota is 2"):
        mix_domains(domains, MixOptions(proportions=weights, total=8, absent="empty", oversample=True))
    interleaved = mix_domains(domains, MixOptions(proportions=weights, absent="empty", seed=1))
    assert interleaved.counts["geometry"] == 0 and len(interleaved.dataset) > 0
