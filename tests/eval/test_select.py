"""Checkpoint selection: the rule on planted numbers, and the command end to end on tiny checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval.select import (
    CheckpointScore,
    checkpoint_step,
    eval_reports,
    main,
    partial_accuracy_warning,
    rank_checkpoints,
    write_selection,
)


def _planted(accuracy: bool) -> list[CheckpointScore]:
    return [
        CheckpointScore(
            "ckpt/checkpoint-100", 100, entropy=0.40, critical_tokens=50, accuracy=0.62 if accuracy else None
        ),
        CheckpointScore(
            "ckpt/checkpoint-200", 200, entropy=0.95, critical_tokens=48, accuracy=0.58 if accuracy else None
        ),
        CheckpointScore(
            "ckpt/checkpoint-300", 300, entropy=0.90, critical_tokens=52, accuracy=0.60 if accuracy else None
        ),
        CheckpointScore(
            "ckpt/checkpoint-400", 400, entropy=None, critical_tokens=0, accuracy=0.70 if accuracy else None
        ),
    ]


def test_without_accuracy_the_highest_entropy_checkpoint_wins() -> None:
    ranked = rank_checkpoints(_planted(accuracy=False))
    assert [s.step for s in ranked] == [200, 300, 100, 400]


def test_with_accuracy_low_entropy_checkpoints_are_set_aside_then_accuracy_decides() -> None:
    ranked = rank_checkpoints(_planted(accuracy=True), entropy_ratio=0.9)
    # 100 is the most accurate measured one but imitates (0.40 < 0.9 x 0.95); 400 made no critical token
    assert ranked[0].step == 300
    assert not next(s for s in ranked if s.step == 100).eligible


def test_no_critical_token_anywhere_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ValueError, match="num-generations"):
        rank_checkpoints([CheckpointScore("a", 1, None, 0)])


def test_selection_files_are_written(tmp_path: Path) -> None:
    selection = write_selection(_planted(accuracy=True), tmp_path, 0.9, ["wait"])
    assert selection["chosen"] == "ckpt/checkpoint-300"
    assert json.loads((tmp_path / "checkpoints.json").read_text())[0]["step"] == 300
    assert (tmp_path / "critical_entropy.png").read_bytes()[:4] == b"\x89PNG"
    assert checkpoint_step("runs/checkpoint-1500", 0) == 1500 and checkpoint_step("final", 7) == 7


@pytest.mark.slow
def test_select_command_on_two_tiny_checkpoints(
    tiny_internvl: Path,
    synthetic_dataset_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_vocab_words: list[str],
) -> None:
    second = tmp_path / "checkpoint-2"
    shutil.copytree(tiny_internvl, second)
    (second / "eval").mkdir()
    (second / "eval" / "report.json").write_text(json.dumps({"average_accuracy": 0.5}))
    first_report = tmp_path / "first_report.json"
    first_report.write_text(json.dumps({"average_accuracy": 0.3}))
    out = tmp_path / "selection"
    code = main(
        [
            "--checkpoints",
            str(tiny_internvl),
            str(second),
            # a trailing slash still names the first checkpoint
            "--eval-report",
            f"{tiny_internvl}/={first_report}",
            "--probe-data",
            str(synthetic_dataset_dir),
            "--limit",
            "2",
            "--num-generations",
            "2",
            "--max-new-tokens",
            "24",
            "--output-dir",
            str(out),
            "--words",
            *tiny_vocab_words,  # words the random-weight model can say (conftest)
        ]
    )
    table = json.loads((out / "checkpoints.json").read_text())
    assert code == 0 and len(table) == 2
    assert {row["checkpoint"] for row in table} == {str(tiny_internvl), str(second)}
    # the same weights give the same entropy, so both are eligible and accuracy (0.5 > 0.3) decides
    assert json.loads((out / "selection.json").read_text())["chosen"] == str(second)
    assert {row["checkpoint"]: row["accuracy"] for row in table} == {
        str(tiny_internvl): 0.3,
        str(second): 0.5,
    }
    progress = capsys.readouterr().err
    assert "select: 100%" in progress and "2/2" in progress  # a bar over the checkpoints
    assert "checkpoint-2: probes" in progress  # and one over each checkpoint's probe prompts


def test_eval_report_pairs_are_validated_naming_the_flag(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"average_accuracy": 0.5}))
    ckpt = str(tmp_path / "checkpoint-1")
    assert eval_reports([f"{ckpt}/={report}"], [ckpt]) == {ckpt: report}
    with pytest.raises(SystemExit, match="--eval-report .*expected CKPT=PATH"):
        eval_reports([str(report)], [ckpt])
    with pytest.raises(SystemExit, match="--eval-report .*is not one of --checkpoints"):
        eval_reports([f"{tmp_path / 'checkpoint-2'}={report}"], [ckpt])
    with pytest.raises(SystemExit, match="--eval-report .*no such file"):
        eval_reports([f"{ckpt}={tmp_path / 'missing.json'}"], [ckpt])


def test_partial_accuracies_are_warned_about() -> None:
    scores = _planted(accuracy=True)
    assert partial_accuracy_warning(scores) is None
    scores[1].accuracy = None
    warning = partial_accuracy_warning(scores)
    assert warning is not None and "ckpt/checkpoint-200" in warning and "entropy alone" in warning
