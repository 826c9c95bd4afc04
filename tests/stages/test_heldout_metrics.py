"""A training stage with `heldout:` records the held-out accuracy of the model it saved (and started from)."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from skywork_rl.families.parts import load_model_and_processor
from skywork_rl.miniature.heldout import HeldoutArguments, evaluate_completions, heldout_result
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.sft import SFTStage


@pytest.mark.slow
def test_sft_stage_records_heldout_accuracy_of_its_input_and_its_saved_model(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    out = tmp_path / "sft"
    argv = [
        f"--model.name_or_path={tiny_internvl}",
        f"--data.train={synthetic_dataset_dir}",
        f"--training.output_dir={out}",
        "--training.max_steps=2",
        "--training.per_device_train_batch_size=4",
        "--training.save_strategy=no",
        "--training.use_cpu=true",
        "--training.report_to=[]",
        f"--heldout.data={synthetic_dataset_dir}",
        "--heldout.num_examples=6",
        "--heldout.max_new_tokens=8",
        "--heldout.measure_start=true",
    ]
    run_stage(SFTStage(parse_stage_config(SFTStage, argv)))
    metrics = json.loads((out / "stage.json").read_text())["metrics"]
    rows = list(Dataset.load_from_disk(str(synthetic_dataset_dir)).select(range(6)))
    for path, key in ((out, "heldout/accuracy"), (tiny_internvl, "heldout/start_accuracy")):
        model, processor = load_model_and_processor(str(path))
        assert (
            metrics[key]
            == heldout_result(
                model, processor, rows, sampling=HeldoutArguments(max_new_tokens=8).sampling
            ).accuracy
        )
    assert "heldout/start_no_answer" in metrics and "heldout/no_answer" in metrics


def test_heldout_data_without_gold_answers_is_refused_naming_the_key(tmp_path):
    Dataset.from_list([{"prompt": [{"role": "user", "content": "hi"}]}]).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(ValueError, match="heldout.data .* no 'solution' column"):
        HeldoutArguments(data=str(tmp_path / "d")).rows()


def test_answer_without_a_box_is_wrong_and_counted_as_no_answer():
    rows = [
        {"solution": "red", "source": "synthetic/shape_color"},
        {"solution": "blue", "source": "synthetic/x"},
    ]
    result = evaluate_completions(rows, ["<think>x</think> \\boxed{red}", "<think>x</think> blue"])
    assert result.accuracy == 0.5 and result.no_answer == 1
    assert result.as_metrics()["heldout/shape_color/accuracy"] == 1.0


class _FixedBackend:
    """Returns the given completions per row and records how it was asked (sampling, count, seed)."""

    def __init__(self, completions: list[list[str]]) -> None:
        self.completions, self.calls = completions, []

    def generate(self, rows, *, sampling, num_generations=1):
        self.calls.append((len(rows), num_generations, sampling.temperature, sampling.seed))
        return [texts[:num_generations] for texts in self.completions]


def test_sampled_protocol_scores_every_sample_and_reports_their_mean():
    from skywork_rl.miniature.heldout import evaluate_heldout

    right, wrong = "<think>x</think> \\boxed{red}", "<think>x</think> \\boxed{blue}"
    rows = [{"solution": "red", "source": "synthetic/a"}, {"solution": "red", "source": "synthetic/b"}]
    backend = _FixedBackend([[right, wrong, right, right], [wrong, wrong, wrong, right]])
    result = evaluate_heldout(
        backend, rows, sampling=HeldoutArguments(temperature=1.0).sampling, num_samples=4
    )
    assert backend.calls == [(2, 4, 1.0, 0)]
    assert result.accuracy == 4 / 8 and result.num_rows == 2 and result.samples_per_row == 4
    assert result.per_source == {"synthetic/a": 0.75, "synthetic/b": 0.25}


def test_several_greedy_samples_per_row_are_refused():
    with pytest.raises(ValueError, match="heldout.temperature"):
        HeldoutArguments(data="x", num_samples=5)
