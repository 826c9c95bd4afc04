"""The held-out PNG shows chance accuracy and states the protocol (temperature, samples, rows)."""

from __future__ import annotations

import json

from skywork_rl.miniature.heldout import HeldoutArguments, chance_accuracy, evaluate_heldout
from skywork_rl.miniature.heldout_report import (
    PLOT_FILE,
    heldout_figure,
    heldout_protocol,
    write_heldout_summary,
)


def _report(temperature: float = 1.0, samples: int = 5, rows: int = 96) -> dict:
    protocol = {
        "heldout/rows": float(rows),
        "heldout/samples_per_row": float(samples),
        "heldout/temperature": temperature,
        "heldout/chance_accuracy": 0.25,
    }
    start = {k.replace("heldout/", "heldout/start_"): v for k, v in protocol.items()}
    return {
        "name": "tiny",
        "stages": [
            {
                "id": "sft",
                "metrics": {"heldout/start_accuracy": 0.1, "heldout/accuracy": 0.4, **start, **protocol},
            },
            {"id": "grpo", "metrics": {"heldout/accuracy": 0.5, **protocol}},
        ],
    }


def _texts(fig) -> str:
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []
    return " ".join([ax.get_title(), *(t.get_text() for t in ax.texts), *legend])


def test_chance_accuracy_is_the_majority_answer_per_task():
    rows = [
        *({"source": "bar", "solution": s} for s in "AABCDDDD"),  # always "D": 4 of 8
        *({"source": "sum", "solution": s} for s in ("12", "7", " 12")),  # always "12": 2 of 3
    ]
    assert chance_accuracy(rows) == 6 / 11


def test_heldout_png_draws_chance_and_states_the_protocol():
    report = _report()
    protocol = heldout_protocol(report)
    assert protocol["chance_accuracy"] == 0.25 and protocol["rows"] == 96
    fig = heldout_figure([("base", 0.1), ("sft", 0.4), ("grpo", 0.5)], "tiny", protocol)
    text = _texts(fig)
    assert "chance 0.25" in text
    assert "temperature 1, mean of 5 samples per row (avg@5), 96 rows" in text
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in dashed] == [[0.25, 0.25]]


def test_greedy_protocol_is_named_and_differing_protocols_are_all_stated():
    assert heldout_protocol(_report(temperature=0.0, samples=1))["text"] == (
        "greedy (temperature 0), 1 answer per row, 96 rows"
    )
    report = _report()
    report["stages"][1]["metrics"]["heldout/rows"] = 32.0
    text = heldout_protocol(report)["text"]
    assert text.startswith("protocols differ between stages:") and "96 rows" in text and "32 rows" in text


def test_summary_writes_the_png_and_the_protocol_into_the_report(tmp_path):
    report = _report()
    write_heldout_summary(report, tmp_path)
    assert (tmp_path / PLOT_FILE).stat().st_size > 0
    assert json.loads(json.dumps(report))["heldout_protocol"]["samples_per_row"] == 5


def test_a_stale_stage_is_drawn_as_stale_without_its_old_value(tmp_path):
    """After `run --only sft`, grpo's held-out value was measured on a model built from the old SFT: the
    PNG shows a 'stale' bar with no number (not the old 0.50, not nothing) and the report lists it."""
    report = _report()
    grpo = report["stages"][1]
    grpo.update(status="stale", stale_reason="its input was re-made", stale_metrics=grpo.pop("metrics"))
    curve = write_heldout_summary(report, tmp_path)
    assert curve == [("base", 0.1), ("sft", 0.4)]
    assert report["heldout_stale"] == ["grpo"]
    fig = heldout_figure(curve, "tiny", heldout_protocol(report), report["heldout_stale"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["base", "sft", "grpo"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "stale" in texts and "0.50" not in texts


class _Backend:
    def generate(self, rows, num_generations=1, **kwargs):
        return [["<think>x</think> \\boxed{red}"] * num_generations for _ in rows]


def test_measured_accuracy_records_its_protocol_and_chance():
    rows = [{"solution": s, "source": "synthetic/c"} for s in ("red", "red", "blue", "green")]
    metrics = evaluate_heldout(
        _Backend(), rows, sampling=HeldoutArguments(temperature=1.0).sampling, num_samples=3
    ).as_metrics()
    assert metrics["heldout/accuracy"] == 0.5
    assert metrics["heldout/rows"] == 4 and metrics["heldout/samples_per_row"] == 3
    assert metrics["heldout/temperature"] == 1.0 and metrics["heldout/chance_accuracy"] == 0.5
