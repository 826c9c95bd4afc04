"""Callbacks inside a real TRL SFTTrainer run on the tiny VLM: their metrics land in the trainer's logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from eval.benchmarks import load_items
from skywork_rl.callbacks import CriticalEntropyCallback, PeriodicEvalCallback
from skywork_rl.callbacks.entropy import probe_sampling


@pytest.mark.slow  # slow lane: the fast lane keeps this module covered by the callback unit tests in eval/ and callbacks/
def test_entropy_and_eval_callbacks_log_through_the_trainer(
    tiny_internvl: Path, synthetic_dataset_dir: Path, tmp_path: Path
) -> None:
    from trl import SFTConfig, SFTTrainer

    from skywork_rl.data.loading import load_stage_dataset
    from skywork_rl.families.parts import load_model_and_processor

    model, processor = load_model_and_processor(str(tiny_internvl))
    data = load_stage_dataset(str(synthetic_dataset_dir)).select(range(8))
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="no",
        bf16=False,
        use_cpu=True,
        report_to=[],
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        processing_class=processor,
        train_dataset=data.select_columns(["prompt", "completion", "images"]),
    )
    Image.new("RGB", (56, 56), (0, 0, 200)).save(tmp_path / "blue.png")
    bench = tmp_path / "mmmu.jsonl"
    bench.write_text(
        json.dumps(
            {
                "id": "validation_Art_1",
                "question": "Colour?",
                "options": "['red', 'blue']",
                "answer": "B",
                "question_type": "multiple-choice",
                "image_1": "blue.png",
            }
        )
        + "\n"
    )
    probe = [data[i] for i in range(2)]
    trainer.add_callback(
        CriticalEntropyCallback(
            trainer,
            probe,
            every_n_steps=1,
            words=["the", "a", "is", "so", "answer"],
            num_generations=2,
            sampling=probe_sampling(max_new_tokens=16),
        )
    )
    trainer.add_callback(
        PeriodicEvalCallback(trainer, "mmmu", load_items("mmmu", bench), every_n_steps=2, max_new_tokens=8)
    )
    padding_side = processor.tokenizer.padding_side
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2
    assert all("critical_entropy/count" in entry for entry in logged)
    assert "eval/mmmu/accuracy" in logged[1] and "eval/mmmu/accuracy" not in logged[0]
    assert 0.0 <= logged[1]["eval/mmmu/accuracy"] <= 1.0
    assert processor.tokenizer.padding_side == padding_side


class _Plugin:
    def __init__(self, zero_stage: int) -> None:
        self.zero_stage = zero_stage


class _State:
    def __init__(self, plugin: _Plugin | None) -> None:
        self.deepspeed_plugin = plugin


class _Accelerator:
    def __init__(self, num_processes: int, plugin: _Plugin | None) -> None:
        self.num_processes, self.state = num_processes, _State(plugin)


class _Trainer:
    """The attributes of a `transformers.Trainer` the callbacks read to tell how weights are sharded."""

    def __init__(self, *, zero_stage: int | None = None, fsdp: bool = False, num_processes: int = 2) -> None:
        self.is_deepspeed_enabled = zero_stage is not None
        self.is_fsdp_enabled = fsdp
        plugin = _Plugin(zero_stage) if zero_stage is not None else None
        self.accelerator = _Accelerator(num_processes, plugin)


def test_periodic_eval_refuses_zero3_and_fsdp_but_not_zero2() -> None:
    for trainer, name in [(_Trainer(zero_stage=3), "DeepSpeed ZeRO-3"), (_Trainer(fsdp=True), "FSDP")]:
        with pytest.raises(ValueError, match=rf"monitor.eval_steps: .*{name}.*skywork-rl eval"):
            PeriodicEvalCallback(trainer, "mmmu", ["item"])
    PeriodicEvalCallback.ensure_supported(_Trainer(zero_stage=2))
    PeriodicEvalCallback.ensure_supported(_Trainer())


def test_critical_entropy_trims_probe_rows_to_equal_shares_when_weights_are_sharded(caplog) -> None:
    rows = [{"id": i} for i in range(8)]
    sharded = CriticalEntropyCallback(_Trainer(zero_stage=3, num_processes=3), rows)
    assert sharded.rows == rows[:6]
    assert "monitor.critical_entropy_steps" in caplog.text and "first 6 of 8" in caplog.text
    assert CriticalEntropyCallback(_Trainer(fsdp=True, num_processes=4), rows).rows == rows
    assert CriticalEntropyCallback(_Trainer(zero_stage=2, num_processes=3), rows).rows == rows  # DDP-like
    with pytest.raises(ValueError, match=r"monitor.critical_entropy_steps: .*FSDP.*only 2.*multiple of 3"):
        CriticalEntropyCallback(_Trainer(fsdp=True, num_processes=3), rows[:2])
