"""benchmarks/gpu_step.py: the throughput arithmetic, and the whole procedure on the tiny model on CPU."""

from __future__ import annotations

import json

import pytest
from helpers import benchmark_module


def _module():
    return benchmark_module("gpu_step")


def test_throughput_counts_only_the_timed_steps():
    gpu_step = _module()
    meter = gpu_step.StepMeter()
    meter.step_seconds = [10.0, 2.0, 3.0]  # the first (warm-up) step is slow and excluded
    meter.tokens = [100.0, 300.0, 800.0]  # cumulative, as TRL logs num_tokens
    summary = gpu_step.summarize(meter, warmup=1)
    assert summary == {
        "timed_steps": 2,
        "seconds_per_step": 2.5,
        "tokens_per_step": 350.0,
        "tokens_per_second": 140.0,
    }


def test_throughput_refuses_steps_without_token_logs():
    gpu_step = _module()
    meter = gpu_step.StepMeter()
    meter.step_seconds, meter.tokens = [1.0, 1.0], [5.0]
    with pytest.raises(RuntimeError, match="logging_steps must be 1"):
        gpu_step.summarize(meter, warmup=1)


@pytest.mark.slow
def test_procedure_measures_an_sft_and_a_grpo_ssb_step_on_cpu(tmp_path):
    gpu_step = _module()
    argv = ["--tiny", "--warmup", "1", "--steps", "1", "--rows", "16", "--max-length", "256"]
    argv += ["--max-completion-length", "16", "--out", str(tmp_path)]
    results = gpu_step.main(argv)
    assert json.loads((tmp_path / "gpu_step.json").read_text()) == json.loads(json.dumps(results))
    for stage in ("sft", "grpo"):
        assert results[stage]["timed_steps"] == 1
        assert results[stage]["tokens_per_second"] > 0 and results[stage]["peak_memory_gib"] > 0
        assert results[stage]["memory_kind"] == "cpu_rss"
        assert results[stage]["phases"]["step"]["mfu"] is None  # no peak is known for a CPU
    # a GRPO step is 2 prompts x 4 rollouts, each prompt plus at most 16 completion tokens
    assert results["grpo"]["tokens_per_step"] > 8 * 1


@pytest.mark.slow
def test_the_8b_architecture_scaled_down_runs_and_splits_grpo_into_rollout_and_training(tmp_path):
    """The real-size path on CPU: InternVL3-8B's config with 1 LLM layer of 256, 1 ViT layer, 112 px
    tiles (16 image tokens each) and a 2048-token vocabulary; images two tiles wide (+ thumbnail)."""
    gpu_step = _module()
    argv = ["--arch-config", "internvl3-8b-hf", "--layers", "1", "--hidden", "256", "--vision-layers", "1"]
    argv += ["--image-size", "112", "--tiles", "2", "--vocab", "2048", "--warmup", "1", "--steps", "1"]
    argv += ["--rows", "16", "--batch-size", "2", "--max-length", "256", "--max-completion-length", "8"]
    argv += ["--peak-tflops", "2"]
    results = gpu_step.main([*argv, "--out", str(tmp_path)])
    assert results["attention"] == "sdpa" and results["peak_tflops"] == 2
    sft, grpo = results["sft"]["phases"], results["grpo"]["phases"]
    assert sft["image_tiles_per_step"] == 2 * 3  # two rows of 2 tiles and a thumbnail
    assert sft["step"]["mfu"] == pytest.approx(
        sft["step"]["tflops_per_step"] / sft["step"]["seconds_per_step"] / 2
    )
    # 8 rollouts: each row's image goes through the tower once to generate, once in the loss forward
    assert grpo["image_tiles_per_step"] == 2 * 8 * 3
    assert grpo["rollout"]["seconds_per_step"] + grpo["train"]["seconds_per_step"] == pytest.approx(
        grpo["step"]["seconds_per_step"]
    )
    assert grpo["generate"]["seconds_per_step"] <= grpo["rollout"]["seconds_per_step"]
    assert grpo["optimizer"]["seconds_per_step"] < grpo["train"]["seconds_per_step"]
    rollout, train = grpo["rollout"]["tflops_by_part"], grpo["train"]["tflops_by_part"]
    # the vision tower is frozen (trainable: llm, connector): its training forward costs what the
    # rollout's did; the connector trains (3x)
    assert train["vision"] == pytest.approx(rollout["vision"])
    assert train["connector"] == pytest.approx(3 * rollout["connector"])
    total = grpo["rollout"]["tflops_per_step"] + grpo["train"]["tflops_per_step"]
    assert grpo["step"]["tflops_per_step"] == pytest.approx(total)


def test_auto_attention_is_flash_attention_only_on_a_gpu_in_bf16_with_flash_attn_installed(monkeypatch):
    gpu_step = _module()
    monkeypatch.setattr(gpu_step.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu_step.importlib.util, "find_spec", lambda name: object())
    assert gpu_step.pick_attention("auto", bf16=True) == "flash_attention_2"
    assert gpu_step.pick_attention("auto", bf16=False) == "sdpa"
    assert gpu_step.pick_attention("eager", bf16=True) == "eager"
    monkeypatch.setattr(gpu_step.importlib.util, "find_spec", lambda name: None)
    assert gpu_step.pick_attention("auto", bf16=True) == "sdpa"
