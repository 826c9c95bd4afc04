"""The fast lane's coverage check (tests/conftest.py `pytest_sessionfinish`): every first-party module
must be imported by `pytest -m "not slow"`, and a module no fast test imports is named."""

from __future__ import annotations

from helpers import REPO, fast_lane_gaps, first_party_modules


def test_first_party_modules_are_every_python_file_of_the_three_packages():
    names = first_party_modules()
    files = [p for package in ("skywork_rl", "data_prep", "eval") for p in (REPO / package).rglob("*.py")]
    assert len(names) == len(set(names)) == len(files)
    assert {"skywork_rl", "skywork_rl.cli", "skywork_rl.rewards.accuracy", "data_prep.stages", "eval"} <= set(
        names
    )


def test_the_check_names_exactly_the_modules_the_lane_did_not_import():
    names = first_party_modules()
    loaded = dict.fromkeys(names)
    assert fast_lane_gaps(loaded) == []
    del loaded["eval.mmmu"], loaded["skywork_rl.rewards"]
    assert fast_lane_gaps(loaded) == ["skywork_rl.rewards", "eval.mmmu"]
