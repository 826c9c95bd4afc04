"""The `monitor:` recipe group wires the entropy and eval callbacks into training stages."""

from __future__ import annotations

import json

import pytest

from skywork_rl.callbacks.config import MonitorArguments
from skywork_rl.stages.base import RecipeError, parse_stage_config, run_stage
from skywork_rl.stages.sft import SFTStage


def _argv(model, data, out, *extra):
    return [
        f"--model.name_or_path={model}",
        f"--data.train={data}",
        f"--training.output_dir={out}",
        "--training.max_steps=4",
        "--training.per_device_train_batch_size=2",
        "--training.logging_steps=2",
        "--training.save_strategy=no",
        "--training.bf16=false",
        "--training.use_cpu=true",
        "--training.report_to=[]",
        *extra,
    ]


@pytest.mark.slow
def test_sft_stage_logs_critical_entropy_and_eval_accuracy_when_configured(
    tiny_internvl, synthetic_dataset_dir, tmp_path, tiny_vocab_words
):
    bench = tmp_path / "aime.jsonl"
    bench.write_text(
        "\n".join(
            json.dumps({"id": str(i), "problem": f"What is {i}+1?", "answer": str(i + 1)}) for i in range(3)
        )
    )
    argv = _argv(
        tiny_internvl,
        synthetic_dataset_dir,
        tmp_path / "out",
        "--monitor.critical_entropy_steps=2",
        "--monitor.probe_size=2",
        "--monitor.entropy_max_new_tokens=24",
        f"--monitor.critical_words=[{', '.join(tiny_vocab_words)}]",  # words the random model can say
        "--monitor.eval_steps=4",
        "--monitor.eval_benchmark=aime",
        f"--monitor.eval_file={bench}",
        "--monitor.eval_max_new_tokens=8",
    )
    metrics = run_stage(SFTStage(parse_stage_config(SFTStage, argv)))
    assert metrics["final_critical_entropy/count"] > 0
    assert 0.0 <= metrics["final_eval/aime/accuracy"] <= 1.0
    record = json.loads((tmp_path / "out" / "stage.json").read_text())
    assert "final_critical_entropy/count" in record["metrics"]


def test_eval_interval_without_a_benchmark_is_a_recipe_error(tiny_internvl, synthetic_dataset_dir, tmp_path):
    argv = _argv(tiny_internvl, synthetic_dataset_dir, tmp_path / "o", "--monitor.eval_steps=5")
    with pytest.raises(RecipeError, match="eval_benchmark"):
        parse_stage_config(SFTStage, argv)


def test_monitoring_is_off_by_default():
    args = MonitorArguments()
    assert args.critical_entropy_steps == 0 and args.eval_steps == 0
