"""The eval runner on the tiny InternVL: official local layouts in, report out, resumable."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from eval.benchmarks import load_items, score_records
from eval.cli import main as eval_main
from eval.loading import BenchmarkDataError
from eval.runner import (
    EvalSettings,
    ResumeMismatchError,
    benchmark_source,
    build_backend_kwargs,
    check_resume,
    run_eval,
    run_meta,
)
from skywork_rl.generation.protocol import Generations, SamplingParams
from skywork_rl.generation.transformers_backend import TransformersBackend

SETTINGS = EvalSettings(sampling=SamplingParams(max_new_tokens=8, temperature=1.0, top_p=1.0), save_every=2)


def _write_benchmarks(root: Path) -> Path:
    """MMMU as hub-style records (options as a string, image_1 path), MathVista as testmini.json."""
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (56, 56), (200, 30, 30)).save(root / "images" / "1.png")
    mmmu = [
        {
            "id": f"validation_Math_{i}",
            "question": f"<image 1> What is {i} + 1?",
            "options": str([str(i), str(i + 1), str(i + 2)]),
            "answer": "B",
            "question_type": "multiple-choice",
            "image_1": "images/1.png",
        }
        for i in range(1, 4)
    ]
    mmmu.append(
        {
            "id": "validation_Art_1",
            "question": "Name the colour.",
            "options": "[]",
            "answer": "red",
            "question_type": "open",
            "image_1": "images/1.png",
        }
    )
    (root / "mmmu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mmmu))
    mathvista = {
        "1": {
            "question": "How many squares?",
            "image": "images/1.png",
            "choices": None,
            "precision": None,
            "answer": "1",
            "question_type": "free_form",
            "answer_type": "integer",
            "query": "How many squares?",
            "metadata": {"task": "figure question answering", "category": "math-targeted-vqa"},
        },
    }
    (root / "mathvista.json").write_text(json.dumps(mathvista))
    (root / "aime.jsonl").write_text(
        json.dumps({"id": "2024-I-1", "problem": "What is 2+2?", "answer": "4"}) + "\n"
    )
    return root


class CountingBackend:
    """A real TransformersBackend that records how many rows it was asked to generate."""

    def __init__(self, inner: TransformersBackend) -> None:
        self.inner, self.rows = inner, 0

    def generate(self, rows: Sequence[dict[str, Any]], **kwargs: Any) -> list[list[str]]:
        self.rows += len(rows)
        return self.inner.generate(rows, **kwargs)


@pytest.fixture(scope="module")
def backend(tiny_internvl: Path) -> CountingBackend:
    return CountingBackend(TransformersBackend(str(tiny_internvl), batch_size=4))


def test_report_covers_each_benchmark_with_subjects_and_every_response(
    tmp_path: Path, backend: CountingBackend
) -> None:
    data = _write_benchmarks(tmp_path / "data")
    report = run_eval(
        ["mmmu", "mathvista", "aime"], tmp_path / "out", backend=backend, data_dir=data, settings=SETTINGS
    )
    assert {b: r["total"] for b, r in report["benchmarks"].items()} == {"mmmu": 4, "mathvista": 1, "aime": 1}
    assert set(report["benchmarks"]["mmmu"]["per_subject"]) == {"Math", "Art"}
    assert report["benchmarks"]["mmmu"]["per_category"]["Science"]["total"] == 3
    scores = json.loads((tmp_path / "out" / "mmmu.json").read_text())
    # scored in the official subject order (Art before Math), whatever the file order
    assert [i["id"] for i in scores["per_item"]][:2] == ["validation_Art_1", "validation_Math_1"]
    lines = (tmp_path / "out" / "mmmu.responses.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all("response" in json.loads(line) for line in lines)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["sampling"]["temperature"] == 1.0


@pytest.mark.slow  # slow lane: the fast lane keeps this module covered by test_report_covers_each_benchmark_with_subjects_and_every_response
def test_resumed_eval_does_not_regenerate_saved_responses(tmp_path: Path, backend: CountingBackend) -> None:
    data = _write_benchmarks(tmp_path / "data")
    out = tmp_path / "out"
    run_eval(["mmmu"], out, backend=backend, data_dir=data, settings=SETTINGS)
    responses = out / "mmmu.responses.jsonl"
    lines = responses.read_text().splitlines()
    # a run killed mid-write: two complete lines and a torn third
    responses.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:15])
    before = backend.rows
    run_eval(["mmmu"], out, backend=backend, data_dir=data, settings=SETTINGS)
    assert backend.rows - before == 2  # only the torn and the missing item
    resumed = responses.read_text().splitlines()
    assert resumed[:2] == lines[:2] and len(resumed) == 4
    before = backend.rows
    run_eval(["mmmu"], out, backend=backend, data_dir=data, settings=SETTINGS)
    assert backend.rows == before  # complete: nothing generated


def test_offline_missing_benchmark_file_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchmarkDataError, match="--benchmark-file mathverse=PATH"):
        load_items("mathverse", data_dir=tmp_path)
    with pytest.raises(BenchmarkDataError, match="no such file"):
        load_items("mmmu", tmp_path / "missing.jsonl")


def test_mmmu_prompt_lists_options_and_carries_the_image(tmp_path: Path) -> None:
    items = load_items("mmmu", _write_benchmarks(tmp_path) / "mmmu.jsonl", limit=1)
    text = items[0].row["prompt"][-1]["content"][-1]["text"]
    assert "(B) 2" in text and "\\boxed{}" in text
    assert len(items[0].row["images"]) == 1 and items[0].meta["index2ans"]["C"] == "3"


def test_cli_rescoring_a_runs_responses_reproduces_its_report(
    tmp_path: Path, backend: CountingBackend
) -> None:
    data = _write_benchmarks(tmp_path / "data")
    # responses whose score depends on the parser: \\boxed{} is read first by "reasoning" only
    responses = {
        "validation_Math_1": "(A) could be it, but\n\\boxed{B}",
        "validation_Math_2": "\\boxed{C}",
        "validation_Math_3": "Option A looks wrong. \\boxed{B}",
        "validation_Art_1": "\\boxed{red}",
    }
    for parser in ("reasoning", "official"):
        out = tmp_path / parser
        settings = EvalSettings(
            sampling=SETTINGS.sampling, save_every=2, mmmu_reasoning=parser == "reasoning"
        )
        items = load_items("mmmu", data_dir=data)
        out.mkdir()
        check_resume(
            out / "mmmu.responses.jsonl",
            run_meta("mmmu", None, "CountingBackend", settings, benchmark_source("mmmu", None, data)),
            overwrite=False,
        )
        (out / "mmmu.responses.jsonl").write_text(
            "".join(
                json.dumps({"id": i.id, "response": responses[i.id], "subject": i.subject, "meta": i.meta})
                + "\n"
                for i in items
            )
        )
        report = run_eval(["mmmu"], out, backend=backend, data_dir=data, settings=settings)
        assert report["mmmu_parser"] == parser
        output = tmp_path / f"score-{parser}.json"
        argv = ["score", "--benchmark", "mmmu", "--predictions", str(out / "mmmu.responses.jsonl")]
        argv += ["--output", str(output)] + (["--mmmu-parser", parser] if parser == "official" else [])
        assert eval_main(argv) == 0
        rescored = json.loads(output.read_text())
        run_scores = json.loads((out / "mmmu.json").read_text())
        assert rescored["total"] == 4
        assert (rescored["correct"], rescored["accuracy"]) == (run_scores["correct"], run_scores["accuracy"])
    reasoning = json.loads((tmp_path / "reasoning" / "mmmu.json").read_text())["correct"]
    official = json.loads((tmp_path / "official" / "mmmu.json").read_text())["correct"]
    assert (
        reasoning != official
    )  # the two parsers differ on these responses, so equality above means something


def test_resume_with_another_model_or_sampling_is_refused_naming_the_changed_keys(
    tmp_path: Path, backend: CountingBackend
) -> None:
    data = _write_benchmarks(tmp_path / "data")
    out = tmp_path / "out"
    run_eval(["aime"], out, backend=backend, model="ckpt/a", data_dir=data, settings=SETTINGS)
    assert json.loads((out / "aime.meta.json").read_text())["model"] == "ckpt/a"
    with pytest.raises(ResumeMismatchError, match=r"model \('ckpt/a' -> 'ckpt/b'\)"):
        run_eval(["aime"], out, backend=backend, model="ckpt/b", data_dir=data, settings=SETTINGS)
    hotter = EvalSettings(sampling=SamplingParams(max_new_tokens=8, temperature=0.5, top_p=1.0), save_every=2)
    with pytest.raises(ResumeMismatchError, match=r"sampling\.temperature \(1\.0 -> 0\.5\)"):
        run_eval(["aime"], out, backend=backend, model="ckpt/a", data_dir=data, settings=hotter)
    before = backend.rows
    report = run_eval(
        ["aime"], out, backend=backend, model="ckpt/b", data_dir=data, settings=SETTINGS, overwrite=True
    )
    assert backend.rows - before == 1 and report["model"] == "ckpt/b"  # regenerated, not reused
    assert json.loads((out / "aime.meta.json").read_text())["model"] == "ckpt/b"


def test_resume_after_the_benchmark_file_changed_is_refused(tmp_path: Path, backend: CountingBackend) -> None:
    data = _write_benchmarks(tmp_path / "data")
    out = tmp_path / "out"
    run_eval(["aime"], out, backend=backend, data_dir=data, settings=SETTINGS)
    with (data / "aime.jsonl").open("a") as handle:
        handle.write(json.dumps({"id": "2024-I-2", "problem": "What is 3+3?", "answer": "6"}) + "\n")
    with pytest.raises(ResumeMismatchError, match=r"source\.bytes"):
        run_eval(["aime"], out, backend=backend, data_dir=data, settings=SETTINGS)


def test_cli_refuses_a_resume_for_another_model(
    tmp_path: Path, backend: CountingBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_benchmarks(tmp_path / "data")
    out = tmp_path / "out"
    run_eval(
        ["aime"],
        out,
        backend=backend,
        model="ckpt/a",
        backend_name="transformers",
        data_dir=data,
        settings=SETTINGS,
    )
    # the CLI names the backend "transformers"; the model differs too
    (out / "aime.meta.json").write_text(
        (out / "aime.meta.json").read_text().replace("CountingBackend", "transformers")
    )
    code = eval_main(
        [
            "--model",
            "ckpt/b",
            "--benchmarks",
            "aime",
            "--output-dir",
            str(out),
            "--data-dir",
            str(data),
            "--max-new-tokens",
            "8",
            "--temperature",
            "1.0",
            "--top-p",
            "1.0",
            "--save-every",
            "2",
        ]
    )
    assert code == 2 and "model ('ckpt/a' -> 'ckpt/b')" in capsys.readouterr().err


def test_backend_kwargs_give_batch_size_to_transformers_only() -> None:
    settings = EvalSettings(
        sampling=SamplingParams(),
        batch_size=4,
        trust_remote_code=True,
        backend_kwargs={"tensor_parallel_size": 2, "max_model_len": 4096},
    )
    assert build_backend_kwargs("vllm", settings) == {
        "trust_remote_code": True,
        "tensor_parallel_size": 2,
        "max_model_len": 4096,
    }
    assert build_backend_kwargs("transformers", EvalSettings(sampling=SamplingParams(), batch_size=4)) == {
        "trust_remote_code": False,
        "batch_size": 4,
    }
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        build_backend_kwargs("tgi", settings)


class RecordingVLLM:
    """Stands in for VLLMBackend (vLLM needs CUDA) and records how it was built."""

    built: dict[str, Any] = {}

    def __init__(self, model: str, **kwargs: Any) -> None:
        RecordingVLLM.built = {"model": model, **kwargs}

    def generate(self, rows: Sequence[dict[str, Any]], **kwargs: Any) -> list[list[str]]:
        return [["\\boxed{4}"] for _ in rows]


def test_cli_builds_vllm_without_batch_size_and_with_backend_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import skywork_rl.generation.vllm_backend

    monkeypatch.setattr(skywork_rl.generation.vllm_backend, "VLLMBackend", RecordingVLLM)
    data = _write_benchmarks(tmp_path / "data")
    code = eval_main(
        [
            "--model",
            "ckpt/a",
            "--benchmarks",
            "aime",
            "--output-dir",
            str(tmp_path / "out"),
            "--data-dir",
            str(data),
            "--backend",
            "vllm",
            "--trust-remote-code",
            "--backend-kwargs",
            '{"tensor_parallel_size": 2, "max_model_len": 4096}',
        ]
    )
    assert code == 0
    assert RecordingVLLM.built == {
        "model": "ckpt/a",
        "trust_remote_code": True,
        "tensor_parallel_size": 2,
        "max_model_len": 4096,
    }


def test_cli_rejects_backend_kwargs_that_are_not_a_json_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = eval_main(["--model", "m", "--output-dir", str(tmp_path), "--backend-kwargs", "[1]"])
    assert code == 2 and "--backend-kwargs" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["missing.responses.jsonl", "missing_folder"])
def test_cli_score_fails_naming_a_missing_predictions_path(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / name
    code = eval_main(
        ["score", "--benchmark", "mmmu", "--predictions", str(missing), "--output", str(tmp_path / "s.json")]
    )
    assert code == 2 and f"{missing}: no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_cli_score_fails_when_predictions_hold_no_responses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "mmmu.responses.jsonl"
    empty.write_text("")
    (tmp_path / "empty_folder").mkdir()
    for predictions in (empty, tmp_path / "empty_folder"):
        code = eval_main(
            [
                "score",
                "--benchmark",
                "mmmu",
                "--predictions",
                str(predictions),
                "--output",
                str(tmp_path / "s.json"),
            ]
        )
        assert code == 2 and f"{predictions}: no responses found" in capsys.readouterr().err


def _mmmu_record(item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "question": "Pick.",
        "options": "['x', 'y']",
        "answer": "A",
        "question_type": "multiple-choice",
    }


def test_mmmu_snapshot_folder_reads_the_validation_split_only(tmp_path: Path) -> None:
    snapshot = tmp_path / "MMMU"
    for subject in ("Art", "Math"):
        (snapshot / subject).mkdir(parents=True)
        for split in ("dev", "validation", "test"):
            (snapshot / subject / f"{split}-00000-of-00001.jsonl").write_text(
                json.dumps(_mmmu_record(f"{split}_{subject}_1")) + "\n"
            )
    items = load_items("mmmu", snapshot)
    assert sorted(item.id for item in items) == ["validation_Art_1", "validation_Math_1"]


def test_folder_of_several_splits_without_the_benchmark_split_is_refused(tmp_path: Path) -> None:
    for split in ("dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text(json.dumps(_mmmu_record(f"{split}_Art_1")) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"several splits \(dev, test\) and none is 'validation'"):
        load_items("mmmu", tmp_path)


def test_mmmu_open_answer_stored_as_a_list_string_accepts_each_form(tmp_path: Path) -> None:
    record = {
        "id": "validation_Math_15",
        "question": "What is 24/7?",
        "options": "[]",
        "answer": "['24/7', '3.429']",
        "question_type": "open",
    }
    (tmp_path / "mmmu.jsonl").write_text(json.dumps(record) + "\n")
    (item,) = load_items("mmmu", tmp_path / "mmmu.jsonl")
    assert item.meta["answer"] == ["24/7", "3.429"]
    saved = {"id": item.id, "response": "\\boxed{3.429}", "meta": item.meta, "subject": "Math"}
    assert score_records("mmmu", [saved]).correct == 1


class SeedRecordingBackend:
    """Answers every row and records the seed of each generate call."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def generate(self, rows: Sequence[dict[str, Any]], **kwargs: Any) -> list[list[str]]:
        self.seeds.append(kwargs["sampling"].seed)
        return [["\\boxed{B}"] for _ in rows]


def test_resumed_run_samples_with_the_seeds_of_an_uninterrupted_run(tmp_path: Path) -> None:
    data = _write_benchmarks(tmp_path / "data")  # 4 MMMU items, chunks of 2
    whole = SeedRecordingBackend()
    run_eval(["mmmu"], tmp_path / "whole", backend=whole, data_dir=data, settings=SETTINGS)
    assert whole.seeds == [0, 2]
    resumed = SeedRecordingBackend()
    out = tmp_path / "resumed"
    run_eval(["mmmu"], out, backend=resumed, data_dir=data, settings=SETTINGS)
    responses = out / "mmmu.responses.jsonl"
    # killed after the first chunk was saved
    responses.write_text("".join(line + "\n" for line in responses.read_text().splitlines()[:2]))
    resumed.seeds.clear()
    run_eval(["mmmu"], out, backend=resumed, data_dir=data, settings=SETTINGS)
    assert resumed.seeds == whole.seeds[1:]


def test_repetition_penalty_reaches_transformers_generation(tmp_path: Path, backend: CountingBackend) -> None:
    """The skywork-release profile's repetition penalty changes greedy decoding on the tiny model,
    whose random weights otherwise repeat tokens."""
    items = load_items("aime", data_dir=_write_benchmarks(tmp_path / "data"))
    greedy = SamplingParams(max_new_tokens=24, temperature=0.0, seed=0)
    plain = backend.inner.generate([items[0].row], sampling=greedy)
    again = backend.inner.generate([items[0].row], sampling=replace(greedy, repetition_penalty=1.0))
    penalised = backend.inner.generate([items[0].row], sampling=replace(greedy, repetition_penalty=1e4))
    assert plain == again and penalised != plain


class SkippingBackend:
    """Answers B to every row but those named in `skip`, which it could not take (as vLLM skips a
    prompt longer than its max_model_len): no responses, the reason in ``skipped``."""

    def __init__(self, skip: set[str]) -> None:
        self.skip, self.rows = skip, 0

    def generate(self, rows: Sequence[dict[str, Any]], *, num_generations: int = 1, **kw: Any) -> Generations:
        self.rows += len(rows)
        skipped = {i: "prompt_too_long" for i, row in enumerate(rows) if row["id"] in self.skip}
        texts = [[] if i in skipped else ["\\boxed{B}"] * num_generations for i in range(len(rows))]
        return Generations(texts, skipped)


def test_an_item_the_backend_could_not_take_is_a_counted_failure_and_is_not_retried(tmp_path: Path) -> None:
    data = _write_benchmarks(tmp_path / "data")
    backend = SkippingBackend({"validation_Math_2", "2024-I-1"})
    settings = EvalSettings(sampling=SETTINGS.sampling, save_every=2, num_samples=2)
    out = tmp_path / "out"
    report = run_eval(["mmmu", "aime"], out, backend=backend, data_dir=data, settings=settings)
    mmmu, aime = report["benchmarks"]["mmmu"], report["benchmarks"]["aime"]
    # Math_1 and Math_3 answer B in both samples; Art is wrong; Math_2 was never generated
    assert (mmmu["correct"], mmmu["total"], mmmu["failures"], mmmu["num_items"]) == (4, 8, 2, 4)
    assert (aime["correct"], aime["total"], aime["failures"], aime["num_items"]) == (0, 2, 2, 1)
    unseen = [i for i in json.loads((out / "mmmu.json").read_text())["per_item"] if i["error"]]
    assert [(i["id"], i["sample"], i["error"]) for i in unseen] == [
        ("validation_Math_2", 0, "not generated: prompt_too_long"),
        ("validation_Math_2", 1, "not generated: prompt_too_long"),
    ]
    saved = [json.loads(line) for line in (out / "mmmu.responses.jsonl").read_text().splitlines()]
    (record,) = [r for r in saved if r["id"] == "validation_Math_2"]
    assert (
        record["not_generated"] == "prompt_too_long"
        and "response" not in record
        and "responses" not in record
    )
    before = backend.rows
    assert run_eval(["mmmu", "aime"], out, backend=backend, data_dir=data, settings=settings) == report
    assert backend.rows == before  # a resumed run keeps the verdict (--overwrite regenerates)
