"""Tokens/s and peak memory of one SFT step and one GRPO+SSB step: the GPU benchmark procedure.

Builds the same trainers the `sft` and `grpo` stages build (TRL's `SFTTrainer`, our
`SSBGRPOTrainer` with rule rewards), runs `--warmup` steps then `--steps` timed steps, and reports
per stage: seconds per step, tokens/s (prompt + completion tokens the trainer counted, TRL's
`num_tokens`), and peak memory (CUDA: `torch.cuda.max_memory_allocated`; CPU: the process's peak
RSS, which includes the Python runtime, so only compare CPU numbers with CPU numbers).

On a GPU, bf16 on the largest model that fits, e.g.:
    python benchmarks/gpu_step.py --model OpenGVLab/InternVL3-1B-hf --bf16 --out benchmarks/results
On CPU (the test suite's check that the procedure works), the tiny InternVL:
    python benchmarks/gpu_step.py --tiny --steps 1 --out outputs/benchmarks
Writes `gpu_step.json` into --out; benchmarks/RESULTS.md says which figures were measured where.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback


class StepMeter(TrainerCallback):
    """Wall time of each optimizer step and the cumulative token count logged after it."""

    def __init__(self) -> None:
        self.step_seconds: list[float] = []
        self.tokens: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.step_seconds.append(time.perf_counter() - self._t0)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and "num_tokens" in logs:
            self.tokens.append(float(logs["num_tokens"]))


def summarize(meter: StepMeter, warmup: int) -> dict[str, float]:
    """Throughput over the timed steps only (the first `warmup` steps compile, allocate and warm caches)."""
    timed = meter.step_seconds[warmup:]
    if not timed or len(meter.tokens) < len(meter.step_seconds):
        raise RuntimeError(
            f"expected one timing and one num_tokens log per step, got {len(meter.step_seconds)} timings, "
            f"{len(meter.tokens)} token logs (logging_steps must be 1)"
        )
    start_tokens = meter.tokens[warmup - 1] if warmup else 0.0
    tokens = meter.tokens[len(meter.step_seconds) - 1] - start_tokens
    seconds = sum(timed)
    return {
        "timed_steps": len(timed),
        "seconds_per_step": seconds / len(timed),
        "tokens_per_step": tokens / len(timed),
        "tokens_per_second": tokens / seconds,
    }


def _reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_gib() -> dict[str, float | str]:
    if torch.cuda.is_available():
        return {"peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30, "memory_kind": "cuda_allocated"}
    # ru_maxrss is KiB on Linux: the peak over the whole process so far, not per stage
    return {
        "peak_memory_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "memory_kind": "cpu_rss",
    }


def _common(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    return {
        "output_dir": str(out),
        "max_steps": args.warmup + args.steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "bf16": args.bf16,
        "use_cpu": not torch.cuda.is_available(),
        "gradient_checkpointing": args.gradient_checkpointing,
        "learning_rate": 1e-6,
        "seed": 0,
        "dataloader_num_workers": 0,
    }


def sft_step(args: argparse.Namespace, model_path: str, data: Any, out: Path) -> dict[str, Any]:
    from trl import SFTConfig, SFTTrainer

    from skywork_rl.models import ModelArguments, load_from_args

    model, processor = load_from_args(ModelArguments(name_or_path=model_path, dtype=_dtype(args)))
    config = SFTConfig(
        **_common(args, out), per_device_train_batch_size=args.batch_size, max_length=args.max_length
    )
    meter = StepMeter()
    train = data.select_columns([c for c in ("prompt", "completion", "images") if c in data.column_names])
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=train, processing_class=processor, callbacks=[meter]
    )
    _reset_peak()
    trainer.train()
    return {**summarize(meter, args.warmup), **_peak_memory_gib()}


def grpo_step(args: argparse.Namespace, model_path: str, data: Any, out: Path) -> dict[str, Any]:
    from skywork_rl.models import ModelArguments, load_from_args
    from skywork_rl.rewards.config import RewardArguments, build_reward_funcs
    from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer
    from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

    reward_funcs, weights = build_reward_funcs(
        RewardArguments(reward_funcs=["accuracy", "format"], reward_weights=[1.0, 0.5])
    )
    model, processor = load_from_args(ModelArguments(name_or_path=model_path, dtype=_dtype(args)))
    config = SkyworkGRPOConfig(
        **_common(args, out),
        per_device_train_batch_size=args.num_generations * args.prompts,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        temperature=1.0,
        reward_weights=weights,
        ssb_enabled=True,
        use_vllm=args.use_vllm,
    )
    meter = StepMeter()
    trainer = SSBGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=data,
        processing_class=processor,
        callbacks=[meter],
    )
    _reset_peak()
    trainer.train()
    return {**summarize(meter, args.warmup), **_peak_memory_gib()}


def _dtype(args: argparse.Namespace) -> str:
    return "bfloat16" if args.bf16 else "float32"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint folder or hub id (HF-native VLM)")
    parser.add_argument("--tiny", action="store_true", help="build and use the tiny random InternVL")
    parser.add_argument("--stages", nargs="+", default=["sft", "grpo"], choices=["sft", "grpo"])
    parser.add_argument("--bf16", action="store_true", help="bf16 weights and autocast (GPU runs)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--batch-size", type=int, default=4, help="SFT sequences per step")
    parser.add_argument("--max-length", type=int, default=2048, help="SFT max sequence length")
    parser.add_argument("--prompts", type=int, default=2, help="GRPO prompts per step")
    parser.add_argument("--num-generations", type=int, default=4, help="GRPO group size")
    parser.add_argument("--max-completion-length", type=int, default=256)
    parser.add_argument("--use-vllm", action="store_true", help="GRPO rollouts with vLLM (colocate)")
    parser.add_argument("--rows", type=int, default=64, help="synthetic rows to train on")
    parser.add_argument("--out", default="outputs/benchmarks", help="folder for gpu_step.json")
    args = parser.parse_args(argv)
    if not args.model and not args.tiny:
        parser.error("give --model PATH_OR_HUB_ID or --tiny")
    from skywork_rl.synthetic import build_dataset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model
        if args.tiny:
            from skywork_rl.tiny import make_tiny_model

            model_path = str(make_tiny_model("internvl", Path(tmp) / "tiny"))
        data = build_dataset(args.rows, seed=0)
        results: dict[str, Any] = {
            "model": "tiny-internvl" if args.tiny else args.model,
            "device": torch.cuda.get_device_name()
            if torch.cuda.is_available()
            else platform.processor() or "cpu",
            "dtype": _dtype(args),
            "torch": torch.__version__,
            "settings": {k: v for k, v in vars(args).items() if k not in ("out", "model")},
        }
        runners = {"sft": sft_step, "grpo": grpo_step}
        for stage in args.stages:
            results[stage] = runners[stage](args, model_path, data, Path(tmp) / stage)
            print(f"{stage}: {json.dumps(results[stage])}", flush=True)
    (out / "gpu_step.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
