"""`skywork-rl eval` as users meet it: readable help, one-line errors naming the file, profiles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from eval.cli import build_run_parser, build_score_parser
from eval.cli import main as eval_main
from skywork_rl.errors import DataError


def test_eval_help_shows_readable_types() -> None:
    for parser in (build_run_parser(), build_score_parser()):
        text = parser.format_help()
        assert "<function" not in text and "<lambda>" not in text
        assert "{reasoning,official}" in text
    assert "{r1v3,skywork-release}" in build_run_parser().format_help()


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


GOOD = json.dumps({"id": "1", "response": "\\boxed{4}", "meta": {"answer": "4"}})


@pytest.mark.parametrize(
    ("benchmark", "name", "content", "says"),
    [
        ("aime", "aime.responses.jsonl", f"{{not json\n{GOOD}\n", ":1: not JSON"),
        ("aime", "aime.responses.jsonl", b"\xff\xfe\x00garbage\n", "not a readable"),
        ("aime", "aime.responses.jsonl", json.dumps({"response": "4", "meta": {}}) + "\n", "lacks 'id'"),
        ("aime", "aime.responses.jsonl", json.dumps({"id": "1", "response": "4"}) + "\n", "lacks ['meta']"),
        ("aime", "aime.json", "[]", "pass the <benchmark>.responses.jsonl"),
        ("mmmu", "outputs.json", "[{]", "not a readable JSON file"),
        ("mmmu", "outputs.json", json.dumps([{"id": "validation_Art_1"}]), "lacks"),
    ],
)
def test_eval_score_fails_in_one_line_naming_an_unreadable_predictions_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], benchmark: str, name: str, content: Any, says: str
) -> None:
    predictions = _write(tmp_path / name, content)
    argv = [
        "score",
        "--benchmark",
        benchmark,
        "--predictions",
        str(predictions),
        "--output",
        str(tmp_path / "s.json"),
    ]
    assert eval_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(predictions) in err and says in err
    assert not (tmp_path / "s.json").exists()


def test_eval_score_error_keeps_its_traceback_under_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYWORK_RL_DEBUG", "1")
    missing = tmp_path / "missing.responses.jsonl"
    with pytest.raises(DataError, match="no such file or folder"):
        eval_main(
            ["score", "--benchmark", "aime", "--predictions", str(missing), "--output", str(tmp_path / "s")]
        )


class ScriptedBackend:
    """Stands in for VLLMBackend: records each generate call; sample s of every row answers
    ``\\boxed{4}`` when s is even, ``\\boxed{5}`` otherwise (so samples differ in accuracy)."""

    calls: list[dict[str, Any]] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        ScriptedBackend.calls = []

    def generate(self, rows: Sequence[dict[str, Any]], **kwargs: Any) -> list[list[str]]:
        ScriptedBackend.calls.append(
            {**vars(kwargs["sampling"]), "num_generations": kwargs["num_generations"]}
        )
        n = kwargs["num_generations"]
        return [[f"\\boxed{{{4 if s % 2 == 0 else 5}}}" for s in range(n)] for _ in rows]


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import skywork_rl.generation.vllm_backend

    monkeypatch.setattr(skywork_rl.generation.vllm_backend, "VLLMBackend", ScriptedBackend)
    data = tmp_path / "data"
    _write(
        data / "aime.jsonl", json.dumps({"id": "2024-I-1", "problem": "What is 2+2?", "answer": "4"}) + "\n"
    )
    return data


def _run(data: Path, out: Path, *flags: str) -> dict[str, Any]:
    argv = ["--model", "ckpt", "--benchmarks", "aime", "--backend", "vllm", "--data-dir", str(data)]
    assert eval_main([*argv, "--output-dir", str(out), *flags]) == 0
    return json.loads((out / "report.json").read_text())


def test_r1v3_profile_is_the_default_and_reports_avg_at_5_with_the_spread(
    scripted: Path, tmp_path: Path
) -> None:
    report = _run(scripted, tmp_path / "out")
    (call,) = ScriptedBackend.calls
    assert {
        k: call[k]
        for k in ("num_generations", "max_new_tokens", "temperature", "top_p", "repetition_penalty")
    } == {
        "num_generations": 5,
        "max_new_tokens": 16384,
        "temperature": 1.0,
        "top_p": 1.0,
        "repetition_penalty": 1.0,
    }
    assert report["profile"] == "r1v3" and report["num_samples"] == 5
    aime = report["benchmarks"]["aime"]
    assert aime["per_sample_accuracy"] == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert aime["accuracy"] == pytest.approx(0.6) and aime["accuracy_std"] == pytest.approx(0.5477, abs=1e-4)
    assert (aime["num_items"], aime["correct"], aime["total"]) == (1, 3, 5)
    saved = json.loads((tmp_path / "out" / "aime.responses.jsonl").read_text())
    assert len(saved["responses"]) == 5


def test_skywork_release_profile_decodes_greedily_with_repetition_penalty(
    scripted: Path, tmp_path: Path
) -> None:
    report = _run(scripted, tmp_path / "out", "--profile", "skywork-release")
    (call,) = ScriptedBackend.calls
    assert (call["num_generations"], call["temperature"], call["top_p"]) == (1, 0.0, 0.95)
    assert (call["repetition_penalty"], call["max_new_tokens"]) == (1.05, 8000)
    assert report["profile"] == "skywork-release" and report["sampling"]["repetition_penalty"] == 1.05
    assert report["benchmarks"]["aime"]["per_sample_accuracy"] == [1.0]


def test_explicit_flags_override_the_profile(scripted: Path, tmp_path: Path) -> None:
    flags = ("--profile", "skywork-release", "--temperature", "0.6", "--num-samples", "3")
    report = _run(scripted, tmp_path / "out", *flags)
    (call,) = ScriptedBackend.calls
    assert (call["temperature"], call["num_generations"], call["repetition_penalty"]) == (0.6, 3, 1.05)
    assert report["sampling"]["temperature"] == 0.6 and report["num_samples"] == 3
    assert report["benchmarks"]["aime"]["per_sample_accuracy"] == [1.0, 0.0, 1.0]
