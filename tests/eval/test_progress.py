"""What a person watching eval and `select` sees: progress bars, and a plot that names checkpoints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from eval.runner import EvalSettings, run_eval
from eval.select import CheckpointScore, plot_figure
from skywork_rl.generation.protocol import SamplingParams


class BoxedBBackend:
    """Answers B to everything: the bars, not the model, are under test here."""

    def generate(self, rows: Sequence[dict[str, Any]], **kwargs: Any) -> list[list[str]]:
        return [["\\boxed{B}"] for _ in rows]


def _mmmu(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    Image.new("RGB", (28, 28), (0, 0, 200)).save(root / "1.png")
    records = [
        {
            "id": f"validation_Art_{i}",
            "question": "Colour?",
            "options": "['red', 'blue']",
            "answer": "B",
            "question_type": "multiple-choice",
            "image_1": "1.png",
        }
        for i in range(1, n + 1)
    ]
    (root / "mmmu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def test_eval_shows_generation_and_scoring_progress_counting_resumed_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _mmmu(tmp_path / "data", 4)
    settings = EvalSettings(sampling=SamplingParams(max_new_tokens=4), save_every=2)
    out = tmp_path / "out"
    run_eval(["mmmu"], out, backend=BoxedBBackend(), data_dir=data, settings=settings)
    first = capsys.readouterr().err
    assert "mmmu: generate: 100%" in first and "4/4" in first
    assert "mmmu: score: 100%" in first
    responses = out / "mmmu.responses.jsonl"
    responses.write_text("".join(line + "\n" for line in responses.read_text().splitlines()[:2]))
    run_eval(["mmmu"], out, backend=BoxedBBackend(), data_dir=data, settings=settings)
    resumed = capsys.readouterr().err
    assert "mmmu: generate:  50%" in resumed and "2/4" in resumed  # the saved half is shown as done


def test_the_entropy_plot_names_each_checkpoint_on_its_x_axis() -> None:
    scores = [
        CheckpointScore("runs/a/checkpoint-300", 300, 0.9, 10, 0.6),
        CheckpointScore("runs/a/checkpoint-100", 100, 0.4, 12, 0.62),
        CheckpointScore("runs/a/checkpoint-200", 200, 0.95, 9, 0.58),
        CheckpointScore("runs/a/checkpoint-400", 400, None, 0, 0.7),  # no critical token: not drawn
    ]
    axis = plot_figure(scores, "runs/a/checkpoint-300").axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == [
        "checkpoint-100",
        "checkpoint-200",
        "checkpoint-300",
    ]
    assert list(axis.get_xticks()) == [100, 200, 300]  # placed by step
    # two runs' checkpoints of one step: named by their paths, placed side by side
    clash = [CheckpointScore("a/checkpoint-5", 5, 0.5, 3), CheckpointScore("b/checkpoint-5", 5, 0.6, 3)]
    figure = plot_figure(clash, "b/checkpoint-5")
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["a/checkpoint-5", "b/checkpoint-5"]
    assert list(figure.axes[0].get_xticks()) == [0, 1]
    plt.close("all")
