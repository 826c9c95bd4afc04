"""Tokens/s, peak memory and MFU of one SFT step and one GRPO+SSB step, GRPO split into rollout and training.

Builds the same trainers the `sft` and `grpo` stages build (TRL's `SFTTrainer`, our
`SSBGRPOTrainer` with rule rewards, the stages' default `trainable: [llm, connector]`), runs
`--warmup` steps then `--steps` timed steps, and reports per stage: seconds per step, tokens/s
(prompt + completion tokens TRL counts as `num_tokens`), peak memory (CUDA:
`torch.cuda.max_memory_allocated`; CPU: the process's peak RSS, only comparable with CPU runs),
model FLOPs per step and MFU (`benchmarks/gpu_flops.py` states the count; MFU needs a known card
or `--peak-tflops`). A GRPO step is split, by timing TRL's own methods on the trainer (nothing is
forked): `rollout` (`_generate_and_score_completions`: generation, reward scoring, SSB), within it
`generate` (`_generate`) and `rewards` (`_calculate_rewards`), `optimizer` (the optimizer step,
from the `on_pre_optimizer_step` / `on_optimizer_step` callbacks) and `train` (the rest of the
step: the loss forward and backward).

The model, one of:
  --arch-config internvl3-8b-hf   random weights at InternVL3-8B's size (benchmarks/arch/), or any
                                  transformers config.json; scale it down with --layers, --hidden,
                                  --vision-layers, --image-size, --vocab (the CPU check does)
  --model PATH_OR_HUB_ID          a real checkpoint
  --tiny                          the tiny random InternVL (CPU smoke run)
e.g. on one H100 (the commands benchmarks/RESULTS.md asks for):
    python benchmarks/gpu_step.py --arch-config internvl3-8b-hf --bf16 --gradient-checkpointing \\
        --batch-size 2 --max-length 4096 --tiles 6 --prompts 1 --num-generations 8 \\
        --max-completion-length 1024 --out benchmarks/results/h100-internvl3-8b
Writes `gpu_step.json` into --out; benchmarks/RESULTS.md says which figures were measured where.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import platform
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_flops import FlopCounter, peak_tflops  # noqa: E402
from gpu_meters import FlopMeter, PhaseTimer, StepMeter, phase_report, summarize  # noqa: E402
from gpu_model import build_model  # noqa: E402

from skywork_rl.records.atomic import write_atomic

__all__ = ["StepMeter", "main", "phase_report", "summarize"]


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
        **({"optim": args.optim} if args.optim else {}),  # default: TrainingArguments' (as the stages)
    }


def sft_step(args: argparse.Namespace, data: Any, out: Path, peak: float | None) -> dict[str, Any]:
    from trl import SFTConfig, SFTTrainer

    model, processor, trainable = build_model(args)
    config = SFTConfig(
        **_common(args, out), per_device_train_batch_size=args.batch_size, max_length=args.max_length
    )
    meter, counter = StepMeter(), FlopCounter(model, trainable)
    flops = FlopMeter(counter)
    train = data.select_columns([c for c in ("prompt", "completion", "images") if c in data.column_names])
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=train, processing_class=processor, callbacks=[meter, flops]
    )
    _reset_peak()
    trainer.train()
    phases = phase_report({"step": meter.step_seconds}, flops, args.warmup, peak)
    result = {**summarize(meter, args.warmup), **_peak_memory_gib(), "phases": phases}
    counter.remove()
    return result


def grpo_step(args: argparse.Namespace, data: Any, out: Path, peak: float | None) -> dict[str, Any]:
    from skywork_rl.rewards.config import RewardArguments
    from skywork_rl.rewards.registry import build_reward_funcs
    from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer
    from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

    reward_funcs, weights = build_reward_funcs(
        RewardArguments(reward_funcs=["accuracy", "format"], reward_weights=[1.0, 0.5])
    )
    model, processor, trainable = build_model(args)
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
    meter, counter = StepMeter(), FlopCounter(model, trainable)
    flops = FlopMeter(counter)
    trainer = SSBGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=data,
        processing_class=processor,
        callbacks=[meter, flops],
    )
    methods = {
        "rollout": "_generate_and_score_completions",
        "generate": "_generate",
        "rewards": "_calculate_rewards",
    }
    timer = PhaseTimer(trainer, methods, counter, {"rollout": "rollout"})
    # the timer closes a step's phases before the FLOP meter takes the step's count
    trainer.callback_handler.callbacks.insert(0, timer)
    _reset_peak()
    trainer.train()
    seconds = {"step": meter.step_seconds, "optimizer": meter.optimizer_seconds, **timer.seconds}
    phases = phase_report(seconds, flops, args.warmup, peak)
    if args.use_vllm:  # vLLM generates outside the model: its forwards are not hooked
        phases["rollout"].update(tflops_per_step=None, tflops_by_part=None, mfu=None)
        phases["step"].update(tflops_per_step=None, mfu=None)
    result = {**summarize(meter, args.warmup), **_peak_memory_gib(), "phases": phases}
    counter.remove()
    return result


def pick_attention(requested: str, bf16: bool) -> str:
    """`auto`: flash_attention_2 on a GPU in bf16 when flash-attn is installed, else sdpa."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available() and bf16 and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--arch-config", help="config.json (or a name in benchmarks/arch/) for random weights"
    )
    source.add_argument("--model", help="checkpoint folder or hub id (HF-native VLM)")
    source.add_argument("--tiny", action="store_true", help="build and use the tiny random InternVL")
    scale = parser.add_argument_group("scale an --arch-config down (keeps head dim and layout)")
    scale.add_argument("--layers", type=int, help="LLM layers")
    scale.add_argument("--hidden", type=int, help="LLM width (heads and MLP scale with it)")
    scale.add_argument("--vision-layers", type=int, help="vision tower layers")
    scale.add_argument("--image-size", type=int, help="tile size in pixels (448 for InternVL)")
    scale.add_argument("--vocab", type=int, help="vocabulary size (at least the tokenizer's)")
    parser.add_argument("--max-patches", type=int, default=12, help="tiles per image at most (InternVL: 12)")
    parser.add_argument("--tiles", type=int, default=1, help="make each image this many tiles wide")
    parser.add_argument("--trainable", nargs="+", default=["llm", "connector"], help="parts that train")
    parser.add_argument("--attn", default="auto", choices=["auto", "sdpa", "flash_attention_2", "eager"])
    parser.add_argument("--stages", nargs="+", default=["sft", "grpo"], choices=["sft", "grpo"])
    parser.add_argument("--bf16", action="store_true", help="bf16 weights and autocast (GPU runs)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--optim", help="transformers optimizer name (default: TrainingArguments')")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--batch-size", type=int, default=4, help="SFT sequences per step")
    parser.add_argument("--max-length", type=int, default=2048, help="SFT max sequence length")
    parser.add_argument("--prompts", type=int, default=2, help="GRPO prompts per step")
    parser.add_argument("--num-generations", type=int, default=4, help="GRPO group size")
    parser.add_argument("--max-completion-length", type=int, default=256)
    parser.add_argument("--use-vllm", action="store_true", help="GRPO rollouts with vLLM (colocate; --model)")
    parser.add_argument(
        "--peak-tflops", type=float, help="the device's peak for MFU (default: the bf16 table)"
    )
    parser.add_argument("--rows", type=int, default=64, help="synthetic rows to train on")
    parser.add_argument("--out", default="outputs/benchmarks", help="folder for gpu_step.json")
    args = parser.parse_args(argv)
    if args.use_vllm and not args.model:
        parser.error("--use-vllm needs --model: vLLM loads weights from a checkpoint")
    args.attn = pick_attention(args.attn, args.bf16)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from skywork_rl.miniature.synthetic import build_dataset

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    # the bf16 table is for bf16 runs; an fp32 run has MFU only against a peak the user states
    peak = args.peak_tflops or (peak_tflops(device) if args.bf16 and torch.cuda.is_available() else None)
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny:
            from skywork_rl.miniature.tiny import make_tiny_model

            args.model = str(make_tiny_model("internvl", Path(tmp) / "tiny"))
        data = build_dataset(args.rows, seed=0)
        if args.tiles > 1:
            size = args.image_size or 448
            data = data.map(
                lambda row: {"images": [im.resize((size * args.tiles, size)) for im in row["images"]]}
            )
        results: dict[str, Any] = {
            "model": "tiny-internvl" if args.tiny else args.model or args.arch_config,
            "device": device,
            "peak_tflops": peak,
            "dtype": "bfloat16" if args.bf16 else "float32",
            "attention": args.attn,
            "versions": _versions(),
            "settings": {k: v for k, v in vars(args).items() if k not in ("out", "model")},
        }
        runners = {"sft": sft_step, "grpo": grpo_step}
        for stage in args.stages:
            gc.collect()  # the previous stage's model and optimizer
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            results[stage] = runners[stage](args, data, Path(tmp) / stage, peak)
            print(f"{stage}: {json.dumps(results[stage])}", flush=True)
    write_atomic(out / "gpu_step.json", json.dumps(results, indent=2))
    return results


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"cuda": torch.version.cuda}
    for package in ("torch", "transformers", "trl", "accelerate", "flash-attn", "vllm"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


if __name__ == "__main__":
    main()
