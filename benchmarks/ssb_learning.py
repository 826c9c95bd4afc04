"""Does the Selective Sample Buffer make GRPO learn faster? Held-out accuracy per generated rollout.

R1V2 claims SSB makes GRPO more efficient: as a policy gets better, more prompt groups have all
rollouts right (or all wrong), their advantages are zero, and plain GRPO's "effective samples fall
from about 60 % to below 40 %". This benchmark measures learning, not the mechanism, on the
miniature (`skywork_rl.synthetic_grid`, the tiny InternVL):

1. a weak start: the tiny model after a short SFT (the `sft` stage) on the train split;
2. from it, with the same budget of generated rollouts, the same model and RL prompts, 3+ seeds:
   ``plain`` GRPO (`SSBGRPOTrainer`, ``ssb_enabled: false``), ``ssb`` (R1V2's buffer) and
   ``dynamic_sampling`` (DAPO: zero-std groups dropped, more prompts generated until the update is
   full; `ssb_efficiency.DynamicSamplingGRPOTrainer`);
3. every `--eval-every` updates, held-out accuracy (`skywork_rl.heldout`) on problems of the
   held-out split, which no training split holds, by R1V3's evaluation protocol (temperature 1.0,
   avg@5, fixed seeds; `--heldout-temperature 0` for greedy); the reward is the project's accuracy
   reward.

Writes ``ssb_learning.json`` ({"variants": {name: {heldout_accuracy_start, heldout_accuracy_final
(per seed), rollouts_to_target (per seed, null: not reached), heldout_curve (per seed,
[[rollouts, accuracy], ...]), informative_curve (per seed, [[rollouts, share of the update's
samples with non-zero advantage], ...])}}, "target_accuracy": x, "setup": {...}}) and
``ssb_learning.png`` (both curves, mean and min-max over seeds) into ``--out``.

    python benchmarks/ssb_learning.py --out outputs/benchmarks/ssb_learning
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("plain", "ssb", "dynamic_sampling")
TASKS = ("shape_color",)
COLORS = {"plain": "tab:gray", "ssb": "tab:blue", "dynamic_sampling": "tab:orange"}


def build_start(args: argparse.Namespace) -> Path:
    """The weak start: tiny model, then `--sft-steps` of the `sft` stage on the train split (kept in --out)."""
    from skywork_rl.stages.base import is_complete, parse_stage_config, run_stage
    from skywork_rl.stages.sft import SFTStage
    from skywork_rl.synthetic import build_dataset
    from skywork_rl.tiny import make_tiny_model

    base, data, start = args.out / "tiny", args.out / "train", args.out / "start"
    if is_complete(start):
        return start
    make_tiny_model("internvl", base, seed=0)
    build_dataset(args.train_rows, seed=1, tasks=TASKS, split="train").save_to_disk(str(data))
    argv = [
        f"--model.name_or_path={base}",
        f"--data.train={data}",
        f"--training.output_dir={start}",
        f"--training.max_steps={args.sft_steps}",
        "--training.per_device_train_batch_size=8",
        "--training.learning_rate=3e-3",
        "--training.lr_scheduler_type=constant",
        "--training.save_strategy=no",
        "--training.use_cpu=true",
        "--training.report_to=[]",
        "--training.disable_tqdm=true",
        "--training.seed=0",
    ]
    run_stage(SFTStage(parse_stage_config(SFTStage, argv)), force=True)
    return start


def _prompts(n: int, seed: int, split: str) -> Any:
    from skywork_rl.synthetic import build_dataset

    return build_dataset(n, seed=seed, tasks=TASKS, split=split).select_columns(
        ["prompt", "images", "solution", "source"]
    )


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One variant, one seed: GRPO from the start model until the rollout budget is spent."""
    import torch
    from ssb_efficiency import RecordingDynamicSampling, RecordingGRPO, StopAtBudget
    from transformers import TrainerCallback

    from skywork_rl.heldout import heldout_result
    from skywork_rl.models import load_model_and_processor
    from skywork_rl.rewards.accuracy import AccuracyReward
    from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

    torch.set_num_threads(1)
    args, variant, seed = job["args"], job["variant"], job["seed"]
    torch.manual_seed(seed)
    model, processor = load_model_and_processor(str(job["start"]))
    heldout = list(_prompts(args.heldout_rows, 999, "heldout"))
    train = _prompts(args.rl_rows, 7, "rl").select_columns(["prompt", "images", "solution"])
    batch = args.prompts_per_step * args.num_generations
    config = SkyworkGRPOConfig(
        output_dir=str(args.out / "runs" / f"{variant}-{seed}"),
        max_steps=args.rollouts // batch,
        per_device_train_batch_size=batch,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        beta=0.0,
        loss_type="dapo",
        ssb_enabled=variant == "ssb",
        ssb_max_age=args.ssb_max_age,
        ssb_max_fill_ratio=args.ssb_max_fill_ratio,
        bf16=False,
        use_cpu=True,
        report_to=[],
        logging_steps=10**6,
        save_strategy="no",
        seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )

    def accuracy() -> float:
        return heldout_result(
            model,
            processor,
            heldout,
            max_new_tokens=args.max_completion_length,
            temperature=args.heldout_temperature,
            num_samples=args.heldout_samples if args.heldout_temperature > 0 else 1,
        ).accuracy

    curve = [[0, accuracy()]]
    informative: list[list[float]] = []

    class Record(TrainerCallback):
        def on_step_end(self, targs, state, control, **kwargs):  # noqa: ANN001
            trainer = stop.trainer
            if trainer.update_sizes:
                share = trainer.informative_per_update[-1] / max(trainer.update_sizes[-1], 1)
                informative.append([trainer.generated, share])
            if state.global_step % args.eval_every == 0 or trainer.generated >= trainer.budget:
                curve.append([trainer.generated, accuracy()])
            return control

    stop = StopAtBudget()
    trainer_class = RecordingDynamicSampling if variant == "dynamic_sampling" else RecordingGRPO
    # In-process scoring (num_workers=0): completions are <= max_completion_length tokens, and worker
    # deadlines on a loaded machine would score some of them 0.0 for no reason of theirs.
    trainer = trainer_class(
        model=model,
        reward_funcs=AccuracyReward(num_workers=0),
        args=config,
        train_dataset=train,
        processing_class=processor,
        callbacks=[stop, Record()],
        budget=args.rollouts,
    )
    stop.trainer = trainer
    started = time.process_time()
    trainer.train()
    if curve[-1][0] != trainer.generated:
        curve.append([trainer.generated, accuracy()])
    if job.get("save_to"):  # the trained model, for a stage that continues from it (r1v3_ablations.py)
        trainer.save_model(str(job["save_to"]))
        processor.save_pretrained(str(job["save_to"]))
    return {
        "variant": variant,
        "seed": seed,
        "curve": curve,
        "informative": informative,
        "updates": trainer.state.global_step,
        "cpu_s": time.process_time() - started,
    }


def summarize(runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """The JSON's ``variants`` block from the runs of every variant and seed."""
    out: dict[str, Any] = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        mine = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        out[variant] = {
            "seeds": [r["seed"] for r in mine],
            "heldout_accuracy_start": mine[0]["curve"][0][1],
            "heldout_accuracy_final": [r["curve"][-1][1] for r in mine],
            "rollouts_to_target": [next((g for g, a in r["curve"] if a >= target), None) for r in mine],
            "heldout_curve": [r["curve"] for r in mine],
            "informative_curve": [r["informative"] for r in mine],
            "updates": [r["updates"] for r in mine],
            "cpu_s": [round(r["cpu_s"], 1) for r in mine],
        }
    return out


def _smoothed(curve: list[list[float]], window: int) -> tuple[list[float], list[float]]:
    xs, ys = [p[0] for p in curve], [p[1] for p in curve]
    means = [
        sum(ys[max(0, i - window + 1) : i + 1]) / len(ys[max(0, i - window + 1) : i + 1])
        for i in range(len(ys))
    ]
    return xs, means


def plot(result: dict[str, Any], path: Path, budget: int) -> None:
    """Held-out accuracy and informative share against generated rollouts: mean line, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.linspace(0, budget, 41)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, ax, title in (
        ("heldout_curve", axes[0], "held-out accuracy"),
        ("informative_curve", axes[1], "share of informative samples per update"),
    ):
        for name, variant in result["variants"].items():
            color = COLORS[name]
            curves = [c for c in variant[key] if c]
            if not curves:
                continue
            # Per-update shares are noisy (8 groups): a moving mean over `window` updates, then the grid.
            window = 1 if key == "heldout_curve" else 5
            ys = np.array([np.interp(grid, *_smoothed(c, window)) for c in curves])
            ax.plot(grid, ys.mean(0), color=color, label=f"{name} ({len(curves)} seeds)")
            ax.fill_between(grid, ys.min(0), ys.max(0), color=color, alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("generated rollouts")
        ax.set_ylim(0, 1)
    axes[0].axhline(result["target_accuracy"], color="k", ls=":", lw=1, label="target")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--rollouts", type=int, default=1920, help="generated rollouts per run (the budget)")
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=24)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=6, help="updates between held-out evaluations")
    parser.add_argument("--sft-steps", type=int, default=100, help="SFT steps of the weak start")
    parser.add_argument("--train-rows", type=int, default=128)
    parser.add_argument("--rl-rows", type=int, default=256)
    parser.add_argument("--heldout-rows", type=int, default=96)
    parser.add_argument(
        "--heldout-temperature", type=float, default=1.0, help="R1V3 evaluates at 1.0; 0: greedy"
    )
    parser.add_argument("--heldout-samples", type=int, default=5, help="avg@k samples per held-out row")
    parser.add_argument("--target-gain", type=float, default=0.15, help="target = start accuracy + this")
    parser.add_argument("--ssb-max-age", type=int, default=8)
    parser.add_argument("--ssb-max-fill-ratio", type=float, default=0.5)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny budget (checks the outputs, not the result)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.rollouts, args.sft_steps, args.eval_every = 1, 16, 2, 1
        args.prompts_per_step, args.train_rows, args.rl_rows, args.heldout_rows = 2, 8, 8, 4
    import torch

    torch.set_num_threads(1)  # one thread per process: on 2 shared cores more threads only contend
    args.out.mkdir(parents=True, exist_ok=True)
    wall = time.time()
    start = build_start(args)
    jobs = [
        {"args": args, "variant": v, "seed": s, "start": start}
        for s in range(args.seeds)
        for v in args.variants
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_one, jobs))
    start_accuracy = runs[0]["curve"][0][1]
    target = round(start_accuracy + args.target_gain, 4)
    result = {
        "variants": summarize(runs, target),
        "target_accuracy": target,
        "setup": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "wall_s": round(time.time() - wall, 1),
    }
    (args.out / "ssb_learning.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "ssb_learning.png", args.rollouts)
    for name, v in result["variants"].items():
        print(
            f"{name:17s} start={v['heldout_accuracy_start']:.3f} final={v['heldout_accuracy_final']} "
            f"rollouts_to_target({target:.2f})={v['rollouts_to_target']}"
        )
    print(f"wall {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
