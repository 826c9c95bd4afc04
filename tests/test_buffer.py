"""SelectiveSampleBuffer logic, without a model."""

from __future__ import annotations

import io
from collections import Counter

import pytest
import torch

from skywork_rl.trainers.ssb_buffer import SelectiveSampleBuffer


def _filled(capacity: int = 8, **kwargs) -> SelectiveSampleBuffer:
    buffer = SelectiveSampleBuffer(capacity, **kwargs)
    buffer.push([f"s{i}" for i in range(4)], [0.5, -1.0, 2.0, -0.25], step=0)
    return buffer


def test_push_keeps_only_informative_samples():
    buffer = SelectiveSampleBuffer(10, advantage_threshold=0.1)
    kept = buffer.push(["a", "b", "c", "d", "e"], [0.0, 0.05, -0.2, 1.0, float("nan")], step=3)
    assert kept == 2
    assert [s.payload for s in buffer.samples] == ["c", "d"]
    assert [s.advantage for s in buffer.samples] == [-0.2, 1.0]
    assert all(s.step == 3 for s in buffer.samples)


def test_push_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 payloads but 1 advantages"):
        SelectiveSampleBuffer(4).push(["a", "b"], [1.0], step=0)


def test_buffer_evicts_oldest_when_full():
    buffer = SelectiveSampleBuffer(3)
    buffer.push(["a", "b"], [1.0, 1.0], step=0)
    buffer.push(["c", "d"], [5.0, 5.0], step=1)
    assert [s.payload for s in buffer.samples] == ["b", "c", "d"]
    buffer.push(["e", "f", "g", "h"], [1.0] * 4, step=2)
    assert [s.payload for s in buffer.samples] == ["f", "g", "h"]


def test_stale_samples_are_dropped_before_a_draw():
    buffer = SelectiveSampleBuffer(10, max_age=2)
    buffer.push(["old"], [1.0], step=0)
    buffer.push(["new"], [1.0], step=2)
    assert sorted(s.payload for s in buffer.sample(5, step=2)) == ["new", "old"]  # age 2 == max_age: kept
    drawn = buffer.sample(5, step=3)
    assert [s.payload for s in drawn] == ["new"]
    assert [s.payload for s in buffer.samples] == ["new"]
    assert buffer.evict_stale(5) == 1 and len(buffer) == 0


def test_no_max_age_never_evicts():
    buffer = _filled()
    assert buffer.evict_stale(10**6) == 0 and len(buffer) == 4


def test_probabilities_follow_absolute_advantage_to_the_exponent():
    proportional = _filled(priority_exponent=1.0).probabilities()
    assert proportional == pytest.approx([0.5 / 3.75, 1.0 / 3.75, 2.0 / 3.75, 0.25 / 3.75])
    squared = _filled(priority_exponent=2.0).probabilities()
    total = 0.25 + 1.0 + 4.0 + 0.0625
    assert squared == pytest.approx([0.25 / total, 1.0 / total, 4.0 / total, 0.0625 / total])
    assert _filled(priority_exponent=0.0).probabilities() == pytest.approx([0.25] * 4)


def test_draw_frequencies_match_priorities():
    buffer = _filled(priority_exponent=1.0, seed=123)
    counts = Counter(buffer.sample(1, step=0)[0].payload for _ in range(20000))
    expected = dict(zip(["s0", "s1", "s2", "s3"], buffer.probabilities(), strict=True))
    for name, p in expected.items():
        assert counts[name] / 20000 == pytest.approx(p, abs=0.015)


def test_sample_is_without_replacement_and_capped_by_size():
    drawn = _filled().sample(10, step=0)
    assert sorted(s.payload for s in drawn) == ["s0", "s1", "s2", "s3"]
    assert _filled().sample(0, step=0) == []


def test_sampling_is_deterministic_under_a_seed():
    def draws(seed: int) -> list[list[int]]:
        buffer = _filled(seed=seed)
        return [[s.uid for s in buffer.sample(2, step=0)] for _ in range(10)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_kinds_are_never_mixed():
    buffer = SelectiveSampleBuffer(10)
    buffer.push(["img"], [1.0], step=0, kind=("pixel_values", "prompt_ids"))
    buffer.push(["txt"], [1.0], step=0, kind=("prompt_ids",))
    assert buffer.count(("prompt_ids",)) == 1 and buffer.count(any_kind=True) == 2
    assert [s.payload for s in buffer.sample(5, step=0, kind=("prompt_ids",))] == ["txt"]


def test_state_dict_round_trip_restores_contents_and_random_stream():
    buffer = _filled(seed=5, max_age=10)
    buffer.push([torch.arange(3)], [1.5], step=1, kind=("prompt_ids",))
    blob = io.BytesIO()
    torch.save(buffer.state_dict(), blob)
    blob.seek(0)
    restored = SelectiveSampleBuffer(8, max_age=10, seed=999)
    restored.load_state_dict(torch.load(blob, weights_only=True))

    assert [(s.uid, s.advantage, s.step, s.kind) for s in restored.samples] == [
        (s.uid, s.advantage, s.step, s.kind) for s in buffer.samples
    ]
    assert torch.equal(restored.samples[-1].payload, torch.arange(3))
    assert [s.uid for s in restored.sample(3, step=1)] == [s.uid for s in buffer.sample(3, step=1)]
    restored.push(["next"], [1.0], step=2)
    assert restored.samples[-1].uid == 5


def test_load_state_dict_names_missing_keys():
    with pytest.raises(ValueError, match="lacks"):
        SelectiveSampleBuffer(2).load_state_dict({"samples": []})


@pytest.mark.parametrize(
    "kwargs",
    [{"capacity": 0}, {"capacity": 2, "priority_exponent": -1}, {"capacity": 2, "max_age": -1}],
)
def test_invalid_options_are_rejected(kwargs):
    with pytest.raises(ValueError, match="SelectiveSampleBuffer"):
        SelectiveSampleBuffer(**kwargs)
