"""Pass-rate filtering with a policy of known pass rates: the right prompts stay; a killed run resumes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from data_prep.chunks import ChunkStore, ChunkStoreMismatch
from data_prep.pass_rate import PassRateOptions, compute_pass_rates, cut
from skywork_rl.data.schema import user_prompt
from skywork_rl.generation.protocol import GenerationBackend
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class

K = 4
PLANTED = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.0, 1.0, 0.25, 0.75, 0.5]


class ScriptedPolicy:
    """A generation backend whose pass rate per prompt is known: the row's ``planted_rate`` times k
    of its completions give the gold answer in the R1V format, the others a wrong one."""

    def __init__(self, name_or_path: str = "scripted", fail_after_calls: int | None = None) -> None:
        self.fail_after_calls = fail_after_calls
        self.calls = 0
        self.generated: Counter[str] = Counter()

    def generate(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        sampling: Any = None,
        num_generations: int = 1,
    ) -> list[list[str]]:
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        out = []
        for row in rows:
            self.generated[row["id"]] += 1
            right = round(row["planted_rate"] * num_generations)
            good = f"<think>work it out</think> The answer is \\boxed{{{row['solution']}}}"
            bad = f"<think>guess</think> \\boxed{{{int(row['solution']) + 1}}}"
            out.append([good] * right + [bad] * (num_generations - right))
        return out


def make_dataset():
    from datasets import Dataset

    rows = [
        {
            "prompt": user_prompt(f"Problem {i}: what is {i} + {i}?", 0),
            "images": [],
            "solution": str(2 * i),
            "source": "t",
            "id": f"p{i}",
            "planted_rate": rate,
        }
        for i, rate in enumerate(PLANTED)
    ]
    return Dataset.from_list(rows)


def options(**kw) -> PassRateOptions:
    return PassRateOptions(num_generations=K, chunk_size=3, low=0.25, high=0.75, **kw)


def _run_filter(argv: list[str]) -> dict[str, float]:
    """The pass-rate-filter stage parsed from `argv` and run in this process; its metrics."""
    stage_class = get_stage_class("pass-rate-filter")
    return run_stage(stage_class(parse_stage_config(stage_class, argv)))


def test_scripted_policy_implements_the_generation_protocol():
    assert isinstance(ScriptedPolicy(), GenerationBackend)


def test_filter_keeps_exactly_the_prompts_within_the_band(tmp_path):
    ds = make_dataset()
    store = ChunkStore(tmp_path / "chunks", {"job": 1})
    rates, ran = compute_pass_rates(ds, ScriptedPolicy(), options(), store, progress=False)
    assert rates == PLANTED and ran == 4
    kept, dropped = cut(rates, 0.25, 0.75)
    assert [ds["id"][i] for i in kept] == [f"p{i}" for i, r in enumerate(PLANTED) if 0.25 <= r <= 0.75]
    assert dropped == {"too_hard": 2, "too_easy": 2}


def test_resume_after_a_kill_neither_loses_nor_repeats_scored_prompts(tmp_path):
    ds = make_dataset()
    first = ScriptedPolicy(fail_after_calls=2)  # killed while generating the third of four chunks
    with pytest.raises(KeyboardInterrupt):
        compute_pass_rates(ds, first, options(), ChunkStore(tmp_path / "chunks", {"job": 1}), progress=False)
    assert sorted(first.generated) == [f"p{i}" for i in range(6)]
    second = ScriptedPolicy()
    rates, ran = compute_pass_rates(
        ds, second, options(), ChunkStore(tmp_path / "chunks", {"job": 1}), progress=False
    )
    assert ran == 2 and sorted(second.generated) == sorted(f"p{i}" for i in range(6, 11))
    total = first.generated + second.generated
    assert set(total) == set(ds["id"]) and set(total.values()) == {1}  # every prompt generated exactly once
    assert rates == PLANTED


def test_resuming_a_different_job_is_refused_unless_restarted(tmp_path):
    ChunkStore(tmp_path / "chunks", {"model": "a", "k": 4}).write(0, [{"index": 0}])
    with pytest.raises(ChunkStoreMismatch, match=r"changed: \['k'\]"):
        ChunkStore(tmp_path / "chunks", {"model": "a", "k": 8})
    assert ChunkStore(tmp_path / "chunks", {"model": "a", "k": 8}, restart=True).finished() == set()


def test_stage_writes_pass_rates_as_a_column_and_recut_needs_no_generation(tmp_path):
    make_dataset().save_to_disk(str(tmp_path / "in"))
    out = tmp_path / "filtered"
    base = ["--input.path", str(tmp_path / "in"), "--output.output_dir", str(out)]
    argv = [
        *base,
        "--model.name_or_path",
        "scripted",
        "--model.backend",
        f"{ScriptedPolicy.__module__}:ScriptedPolicy",
        "--filter",
        json.dumps({"num_generations": K, "chunk_size": 4, "low": 0.25, "high": 0.75}),
    ]
    metrics = _run_filter(argv)
    assert metrics["rows"] == 7 and metrics["dropped/too_hard"] == 2 and metrics["dropped/too_easy"] == 2
    import datasets

    kept = datasets.load_from_disk(str(out))
    assert kept["pass_rate"] == [r for r in PLANTED if 0.25 <= r <= 0.75]
    assert datasets.load_from_disk(str(out / "scored"))["pass_rate"] == PLANTED
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pass_rate_histogram"] == {
        "0.0000": 2,
        "0.2500": 2,
        "0.5000": 3,
        "0.7500": 2,
        "1.0000": 2,
    }
    # Re-cut to "solved at least half the time": the backend named here does not even exist.
    recut = [*base, "--model.name_or_path", "x", "--model.backend", "no.such:Backend"]
    recut += ["--filter", json.dumps({"recut": True, "low": 0.5, "high": 1.0})]
    metrics = _run_filter(recut)
    assert metrics["rows"] == 7 and metrics["dropped/too_hard"] == 4
    assert datasets.load_from_disk(str(out))["pass_rate"] == [r for r in PLANTED if r >= 0.5]


class CheckpointPolicy(ScriptedPolicy):
    """A scripted policy whose behaviour is stored in its checkpoint folder (``policy.json``): a
    "retrained" checkpoint answers every prompt right."""

    def __init__(self, name_or_path: str) -> None:
        super().__init__(name_or_path)
        self.always_right = json.loads((Path(name_or_path) / "policy.json").read_text())["always_right"]

    def generate(self, rows, *, num_generations=1, **kw):
        if not self.always_right:
            return super().generate(rows, num_generations=num_generations, **kw)
        return [[f"<think>ok</think> \\boxed{{{row['solution']}}}"] * num_generations for row in rows]


def write_checkpoint(folder: Path, always_right: bool, weights: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "toy"}))
    (folder / "policy.json").write_text(json.dumps({"always_right": always_right}))
    (folder / "model.safetensors").write_bytes(weights)


def saved_input_and_checkpoint(tmp_path: Path, weights: bytes) -> Path:
    """The planted rows saved at ``tmp_path/in`` and a scripted checkpoint at ``tmp_path/sft``
    (not always right, these weights); returns the checkpoint folder."""
    make_dataset().save_to_disk(str(tmp_path / "in"))
    ckpt = tmp_path / "sft"
    write_checkpoint(ckpt, always_right=False, weights=weights)
    return ckpt


def filter_argv(tmp_path: Path, model: Path, *extra: str) -> list[str]:
    return [
        "--input.path",
        str(tmp_path / "in"),
        "--output.output_dir",
        str(tmp_path / "filtered"),
        "--model.name_or_path",
        str(model),
        "--model.backend",
        f"{CheckpointPolicy.__module__}:CheckpointPolicy",
        "--filter",
        json.dumps({"num_generations": K, "chunk_size": 4, "low": 0.0, "high": 1.0}),
        *extra,
    ]


def test_rerunning_after_retraining_into_the_same_folder_samples_the_new_checkpoint(tmp_path):
    import datasets

    ckpt = saved_input_and_checkpoint(tmp_path, b"old")
    _run_filter(filter_argv(tmp_path, ckpt))
    assert datasets.load_from_disk(str(tmp_path / "filtered"))["pass_rate"] == PLANTED
    write_checkpoint(ckpt, always_right=True, weights=b"retrained")  # SFT re-run into the same folder
    argv = filter_argv(tmp_path, ckpt, "--output.overwrite", "true")
    metrics = _run_filter(argv)
    assert datasets.load_from_disk(str(tmp_path / "filtered"))["pass_rate"] == [1.0] * len(PLANTED)
    assert metrics["pass_rate/mean"] == 1.0
    manifest = json.loads((tmp_path / "filtered" / "manifest.json").read_text())
    assert manifest["chunks_run_now"] == 3


def test_replacing_a_finished_output_regenerates_every_chunk(tmp_path):
    ckpt = saved_input_and_checkpoint(tmp_path, b"w")
    _run_filter(filter_argv(tmp_path, ckpt))
    argv = filter_argv(tmp_path, ckpt, "--output.overwrite", "true")
    _run_filter(argv)
    manifest = json.loads((tmp_path / "filtered" / "manifest.json").read_text())
    assert manifest["chunks_run_now"] == 3


def test_saved_chunks_of_an_old_checkpoint_or_old_gold_answers_are_not_resumed(tmp_path):
    from data_prep.chunks import job_fingerprint

    ds = make_dataset()
    ckpt = tmp_path / "sft"
    write_checkpoint(ckpt, always_right=False, weights=b"old")
    sampling = {"num_generations": K}
    ChunkStore(tmp_path / "chunks", job_fingerprint(str(ckpt), ds, sampling)).write(0, [{"index": 0}])
    write_checkpoint(ckpt, always_right=False, weights=b"retrained")
    with pytest.raises(ChunkStoreMismatch, match="checkpoint"):
        ChunkStore(tmp_path / "chunks", job_fingerprint(str(ckpt), ds, sampling))
    ChunkStore(tmp_path / "chunks2", job_fingerprint(str(ckpt), ds, sampling)).write(0, [{"index": 0}])
    recleaned = ds.map(lambda r: {"solution": r["solution"] + ".0"})
    with pytest.raises(ChunkStoreMismatch, match="solution_digest"):
        ChunkStore(tmp_path / "chunks2", job_fingerprint(str(ckpt), recleaned, sampling))
    # a hub id has no folder to inspect: its name is its identity
    assert job_fingerprint("org/model", ds, sampling)["checkpoint"] is None


def test_a_band_that_keeps_no_prompt_fails_with_the_counts_and_a_recut_recovers(tmp_path):
    import datasets

    from data_prep.refusals import EmptyOutputError

    ckpt = saved_input_and_checkpoint(tmp_path, b"w")
    narrow = [*filter_argv(tmp_path, ckpt), "--filter.low", "0.9", "--filter.high", "0.95"]
    with pytest.raises(
        EmptyOutputError, match=r"0 of 11 rows left \(dropped: too_easy=2, too_hard=9\)"
    ) as raised:
        _run_filter(narrow)
    assert "--filter.recut true" in str(raised.value)
    out = tmp_path / "filtered"
    assert not (out / "manifest.json").exists() and not (out / "dataset_info.json").exists()
    assert json.loads((out / "stage.json").read_text())["status"] == "failed"
    # the saved pass rates let a wider band be cut without generating (the backend does not exist)
    recut = [*filter_argv(tmp_path, ckpt), "--model.backend", "no.such:Backend", "--filter.recut", "true"]
    assert _run_filter(recut)["rows"] == len(PLANTED)
    assert datasets.load_from_disk(str(out))["pass_rate"] == PLANTED


class SkippingPolicy(ScriptedPolicy):
    """The scripted policy behind a backend that could not take prompts p1 and p4 (as vLLM skips a
    prompt longer than its max_model_len): no completions for them, the reason in ``skipped``."""

    def generate(self, rows: Sequence[dict[str, Any]], **kw: Any) -> list[list[str]]:
        from skywork_rl.generation.protocol import Generations

        out = super().generate(rows, **kw)
        skipped = {i: "prompt_too_long" for i, row in enumerate(rows) if row["id"] in ("p1", "p4")}
        return Generations([[] if i in skipped else texts for i, texts in enumerate(out)], skipped)


def test_a_prompt_the_backend_could_not_take_is_counted_not_generated_never_too_hard(tmp_path):
    import datasets

    make_dataset().save_to_disk(str(tmp_path / "in"))
    out = tmp_path / "filtered"
    argv = ["--input.path", str(tmp_path / "in"), "--output.output_dir", str(out)]
    argv += ["--model.name_or_path", "scripted", "--model.backend", f"{__name__}:SkippingPolicy"]
    argv += ["--filter", json.dumps({"num_generations": K, "chunk_size": 4, "low": 0.25, "high": 0.75})]
    metrics = _run_filter(argv)
    # p1 (planted 0.25, in the band) and p4 (1.0, too easy) were never generated
    assert metrics["dropped/not_generated"] == 2
    assert metrics["rows"] == 6 and metrics["dropped/too_hard"] == 2 and metrics["dropped/too_easy"] == 1
    scored = datasets.load_from_disk(str(out / "scored"))["pass_rate"]
    assert scored == [None if i in (1, 4) else r for i, r in enumerate(PLANTED)]
    assert sum(json.loads((out / "manifest.json").read_text())["pass_rate_histogram"].values()) == 9
    records = [
        json.loads(line)
        for line in (out / "pass_rate_chunks" / "chunk-000000.jsonl").read_text().splitlines()
    ]
    assert records[1]["not_generated"] == "prompt_too_long" and records[1]["num_generations"] == 0
    # a re-cut reads the saved rates and counts the same rows again
    recut = [*argv[:4], "--model.name_or_path", "x", "--model.backend", "no.such:Backend"]
    recut += ["--filter", json.dumps({"recut": True, "low": 0.0, "high": 1.0})]
    assert _run_filter(recut)["dropped/not_generated"] == 2
