"""`eval score` writes its whole report, atomically, whatever text the responses hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.cli import main as eval_main

_OLYMPIAD_META = {"final_answer": ["$3$"], "is_multiple_answer": False, "error": None, "unit": None}
_MMMU_OPEN = {"question_type": "open", "answer": "red", "all_choices": [], "index2ans": {}}
_MMMU_CHOICE = {"question_type": "multiple-choice", "answer": "B", "all_choices": ["A", "B"], "index2ans": {}}
RECORDS = {
    "olympiadbench": [
        {"id": "1", "response": "\\boxed{3}", "meta": _OLYMPIAD_META},
        {"id": "2", "response": "so \\boxed{3\udc00}", "meta": _OLYMPIAD_META},
    ],
    "mmmu": [
        {"id": "validation_Math_1", "subject": "Math", "response": "It is (B)", "meta": _MMMU_CHOICE},
        {"id": "validation_Art_2", "subject": "Art", "response": "It is red\udc00", "meta": _MMMU_OPEN},
    ],
}


@pytest.mark.parametrize("benchmark", sorted(RECORDS))
def test_eval_score_with_a_lone_surrogate_in_a_response_writes_the_whole_report(
    tmp_path: Path, benchmark: str, caplog: pytest.LogCaptureFixture
) -> None:
    predictions = tmp_path / f"{benchmark}.responses.jsonl"
    # json.dumps writes the surrogate as a \udc00 escape, which reads back as the lone surrogate.
    predictions.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[benchmark]))
    output = tmp_path / "score.json"
    output.write_text("previous")
    argv = ["score", "--benchmark", benchmark, "--predictions", str(predictions), "--output", str(output)]
    with caplog.at_level("WARNING", logger="skywork_rl.records.atomic"):
        assert eval_main(argv) == 0
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["total"] == 2 and len(report["per_item"]) == 2
    assert any("\udc00" in json.dumps(item, ensure_ascii=False) for item in report["per_item"])
    assert "1 character(s) UTF-8 cannot encode" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([predictions.name, "score.json"])


def test_a_saved_response_with_a_lone_surrogate_reads_back_whole(tmp_path: Path) -> None:
    from eval.runner import _append, read_responses

    path = tmp_path / "aime.responses.jsonl"
    records = [
        {"id": "1", "response": "x \udc00 \u4e2d", "meta": {}},
        {"id": "2", "response": "y", "meta": {}},
    ]
    _append(path, records)
    assert read_responses(path) == {r["id"]: r for r in records}
