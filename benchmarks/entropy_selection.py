"""Does critical-token entropy pick good checkpoints? Entropy vs held-out accuracy along one GRPO run.

R1V3 selects RL checkpoints by the entropy of the tokens where the model decides (`skywork_rl.entropy`).
This runs plain GRPO on the miniature (`miniature.py`: the task, splits, weak start, GRPO settings
and held-out protocol of `ssb_learning.py`) and at every `--eval-every` updates (a "checkpoint")
measures, on the held-out split, accuracy by R1V3's protocol (`skywork_rl.heldout`; temperature 1.0,
avg@5) and critical-token entropy of sampled rollouts
(`rollout_critical_entropy`, the code the `select` stage and the in-training monitor use). The tiny
model never writes the paper's critical words ("wait", "but", ...); the miniature's decision is the
colour word, so the critical words here are the colour names (``--words``).

Writes ``entropy_selection.json`` ({"checkpoints": [{"rollouts", "step", "heldout_accuracy",
"critical_entropy", "critical_count"}, ...], "spearman": rho, "words": [...], "setup": {...}}) and
``entropy_selection.png`` (both against training progress, and accuracy against entropy) into ``--out``.

    python benchmarks/entropy_selection.py --out outputs/benchmarks/entropy_selection
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (ties share their mean rank); None when either side is constant."""
    from scipy.stats import spearmanr

    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return float(spearmanr(xs, ys).statistic)


def run(args: argparse.Namespace, start: Path) -> list[dict[str, Any]]:
    """Plain GRPO from `start`; measures every `eval_every` updates."""
    import torch
    from miniature import grpo_config, heldout_accuracy, heldout_rows, rl_dataset
    from ssb_efficiency import RecordingGRPO, StopAtBudget
    from transformers import TrainerCallback

    from skywork_rl.entropy import rollout_critical_entropy
    from skywork_rl.models import load_model_and_processor
    from skywork_rl.rewards.accuracy import AccuracyReward

    torch.manual_seed(args.seed)
    model, processor = load_model_and_processor(str(start))
    heldout = heldout_rows(args)
    config = grpo_config(args, args.out / "run", rollouts=args.rollouts, seed=args.seed, ssb_enabled=False)
    points: list[dict[str, Any]] = []

    def measure(step: int, rollouts: int) -> None:
        accuracy = heldout_accuracy(model, processor, heldout, args)
        entropy, _ = rollout_critical_entropy(
            model,
            processor,
            heldout,
            words=args.words,
            num_generations=args.entropy_generations,
            max_new_tokens=args.max_completion_length,
            seed=args.seed,
            batch_size=32,
        )
        points.append(
            {
                "step": step,
                "rollouts": rollouts,
                "heldout_accuracy": accuracy,
                "critical_entropy": entropy.mean,
                "critical_count": entropy.count,
            }
        )

    class Measure(TrainerCallback):
        def on_step_end(self, targs, state, control, **kwargs):  # noqa: ANN001
            if state.global_step % args.eval_every == 0:
                measure(state.global_step, stop.trainer.generated)
            return control

    stop = StopAtBudget()
    measure(0, 0)
    trainer = RecordingGRPO(
        model=model,
        reward_funcs=AccuracyReward(num_workers=0),
        args=config,
        train_dataset=rl_dataset(args),
        processing_class=processor,
        callbacks=[stop, Measure()],
        budget=args.rollouts,
    )
    stop.trainer = trainer
    trainer.train()
    return points


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in result["checkpoints"] if p["critical_entropy"] is not None]
    steps = [p["rollouts"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.plot(steps, [p["heldout_accuracy"] for p in points], "o-", color="tab:blue", label="held-out accuracy")
    ax.set_xlabel("generated rollouts")
    ax.set_ylabel("held-out accuracy", color="tab:blue")
    twin = ax.twinx()
    twin.plot(steps, [p["critical_entropy"] for p in points], "s--", color="tab:red")
    twin.set_ylabel("critical-token entropy (nats)", color="tab:red")
    ax.set_title("along one GRPO run")
    axes[1].scatter([p["critical_entropy"] for p in points], [p["heldout_accuracy"] for p in points])
    axes[1].set_xlabel("critical-token entropy (nats)")
    axes[1].set_ylabel("held-out accuracy")
    rho = result["spearman"]
    axes[1].set_title(f"Spearman rho = {rho:.2f}" if rho is not None else "Spearman rho undefined")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from miniature import add_arguments, smoke

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--start", type=Path, default=None, help="start model (default: the miniature's weak start)"
    )
    parser.add_argument(
        "--rollouts", type=int, default=3840, help="generated rollouts (ssb_learning's budget)"
    )
    parser.add_argument("--eval-every", type=int, default=10, help="updates between checkpoints measured")
    parser.add_argument("--entropy-generations", type=int, default=2, help="rollouts per held-out prompt")
    parser.add_argument("--words", nargs="+", default=["red", "blue", "green", "orange"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny budget (checks the outputs, not the result)"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        smoke(args)
        args.rollouts, args.eval_every = 16, 1
    import torch
    from miniature import baselines, build_start, save_splits

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    wall = time.time()
    save_splits(args)
    start = args.start or build_start(args)
    points = run(args, start)
    measured = [p for p in points if p["critical_entropy"] is not None]
    result = {
        "checkpoints": points,
        "spearman": spearman(
            [p["critical_entropy"] for p in measured], [p["heldout_accuracy"] for p in measured]
        ),
        "words": args.words,
        **baselines(args),
        "setup": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "wall_s": round(time.time() - wall, 1),
    }
    (args.out / "entropy_selection.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "entropy_selection.png")
    for p in points:
        print(p)
    print(f"spearman(entropy, accuracy) = {result['spearman']}; wall {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
