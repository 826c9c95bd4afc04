"""Does critical-token entropy pick good checkpoints? Entropy vs held-out accuracy along one GRPO run.

R1V3 selects RL checkpoints by the entropy of the tokens where the model decides (`skywork_rl.callbacks.entropy`).
This runs plain GRPO on the miniature (`miniature.py`: the task, splits, weak start, GRPO settings
and held-out protocol of `ssb_learning.py`) and at every `--eval-every` updates (a "checkpoint")
measures, on the held-out split, accuracy by R1V3's protocol (`skywork_rl.miniature.heldout`; temperature 1.0,
avg@5) and critical-token entropy of sampled rollouts
(`rollout_critical_entropy`, the code the `select` stage and the in-training monitor use). The tiny
model never writes the paper's critical words ("wait", "but", ...); the miniature's decision is the
colour word, so the critical words here are the colour names (``--words``).

Per seed (``--seeds``, from ``--first-seed``) it compares three checkpoint choices by the held-out
accuracy of the checkpoint each picks: the highest critical-token entropy (R1V3's), the last, and the
best training reward (mean reward of the rollouts since the previous checkpoint); and it reports
entropy's Spearman correlation with accuracy both raw and with the training step held out (partial
rank correlation: accuracy and entropy both rise with training, so a raw correlation can be time).

Writes ``entropy_selection.json`` ({"checkpoints": [per seed: [{"rollouts", "step",
"heldout_accuracy", "critical_entropy", "critical_count", "train_reward"}, ...]], "seeds": [...],
"spearman": [per seed], "partial_spearman": [per seed], "spearman_over_seeds" and
"partial_spearman_over_seeds": {"mean", "ci95", "seeds_defined"}, "entropy_minus": {"last"|"train_reward":
{"mean", "ci95"}} (paired by seed), "picks": {"entropy"|"last"|"train_reward":
{"heldout_accuracy": [per seed], "mean", "ci95"}}, "memorization_baseline", "chance_accuracy",
"words": [...], "setup": {...}}) and ``entropy_selection.png`` (seed ``--first-seed``: both against
training progress, and accuracy against entropy) into ``--out``.

    python benchmarks/entropy_selection.py --out outputs/benchmarks/entropy_selection
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from skywork_rl.records.atomic import save_figure, write_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (ties share their mean rank); None when either side is constant."""
    from scipy.stats import spearmanr

    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return float(spearmanr(xs, ys).statistic)


def partial_spearman(xs: list[float], ys: list[float], zs: list[float]) -> float | None:
    """Spearman correlation of `xs` and `ys` with `zs` held out: the Pearson correlation of the
    residuals of rank(x) and rank(y) after a linear fit on rank(z). None when undefined."""
    import numpy as np
    from scipy.stats import rankdata

    if len(set(xs)) < 2 or len(set(ys)) < 2 or len(xs) < 4:
        return None
    rx, ry, rz = (rankdata(v) for v in (xs, ys, zs))
    design = np.column_stack([np.ones_like(rz), rz])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    if np.allclose(res_x, 0) or np.allclose(res_y, 0):
        return None
    return float(np.corrcoef(res_x, res_y)[0, 1])


def picks(points: list[dict[str, Any]]) -> dict[str, float]:
    """Held-out accuracy of the checkpoint each rule picks (the start, step 0, is not a candidate;
    the first on a tie)."""
    trained = [p for p in points if p["step"] > 0]
    if not trained:  # a budget shorter than one checkpoint: nothing to choose from
        return {}
    with_entropy = [p for p in trained if p["critical_entropy"] is not None]
    if not with_entropy:
        raise ValueError(
            "entropy_selection: no checkpoint wrote a critical word; check --words against the task's answers"
        )
    by_entropy = max(with_entropy, key=lambda p: p["critical_entropy"])
    by_reward = max(trained, key=lambda p: p["train_reward"])
    return {
        "entropy": by_entropy["heldout_accuracy"],
        "last": trained[-1]["heldout_accuracy"],
        "train_reward": by_reward["heldout_accuracy"],
    }


def run_seed(job: tuple[argparse.Namespace, Path, int]) -> list[dict[str, Any]]:
    args, start, seed = job
    import torch

    torch.set_num_threads(1)
    return run(args, start, seed)


def run(args: argparse.Namespace, start: Path, seed: int) -> list[dict[str, Any]]:
    """Plain GRPO from `start`; measures every `eval_every` updates."""
    import torch
    from miniature import grpo_config, heldout_accuracy, heldout_rows, miniature_grpo
    from ssb_efficiency import RecordingGRPO
    from transformers import TrainerCallback

    from skywork_rl.callbacks.entropy import probe_sampling, rollout_critical_entropy
    from skywork_rl.families.parts import load_model_and_processor

    torch.manual_seed(seed)
    model, processor = load_model_and_processor(str(start))
    heldout = heldout_rows(args)
    config = grpo_config(args, args.out / f"run-{seed}", rollouts=args.rollouts, seed=seed, ssb_enabled=False)
    points: list[dict[str, Any]] = []
    last = [0]  # rollouts at the previous checkpoint
    trainer = None  # measured once before it exists

    def measure(step: int, rollouts: int) -> None:
        accuracy = heldout_accuracy(model, processor, heldout, args)
        entropy, _ = rollout_critical_entropy(
            model,
            processor,
            heldout,
            sampling=probe_sampling(max_new_tokens=args.max_completion_length, seed=seed),
            words=args.words,
            num_generations=args.entropy_generations,
            batch_size=32,
        )
        since = [r for n, r in (trainer.reward_curve if trainer else []) if n > last[0]]
        last[0] = rollouts
        points.append(
            {
                "step": step,
                "rollouts": rollouts,
                "heldout_accuracy": accuracy,
                "critical_entropy": entropy.mean,
                "critical_count": entropy.count,
                "train_reward": sum(since) / len(since) if since else None,
            }
        )

    class Measure(TrainerCallback):
        def on_step_end(self, targs, state, control, **kwargs):  # noqa: ANN001
            if state.global_step % args.eval_every == 0:
                measure(state.global_step, trainer.generated)
            return control

    measure(0, 0)
    trainer = miniature_grpo(RecordingGRPO, model, processor, config, args, args.rollouts, Measure())
    trainer.train()
    return points


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in result["checkpoints"][0] if p["critical_entropy"] is not None]
    steps = [p["rollouts"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.plot(steps, [p["heldout_accuracy"] for p in points], "o-", color="tab:blue", label="held-out accuracy")
    ax.set_xlabel("generated rollouts")
    ax.set_ylabel("held-out accuracy", color="tab:blue")
    twin = ax.twinx()
    twin.plot(steps, [p["critical_entropy"] for p in points], "s--", color="tab:red")
    twin.set_ylabel("critical-token entropy (nats)", color="tab:red")
    ax.set_title(f"along one GRPO run (seed {result['seeds'][0]})")
    for seed, run in zip(result["seeds"], result["checkpoints"], strict=True):
        measured = [p for p in run if p["critical_entropy"] is not None]
        axes[1].scatter(
            [p["critical_entropy"] for p in measured],
            [p["heldout_accuracy"] for p in measured],
            s=14,
            label=f"seed {seed}",
        )
    axes[1].set_xlabel("critical-token entropy (nats)")
    axes[1].set_ylabel("held-out accuracy")
    axes[1].legend(fontsize=7)
    axes[1].set_title("every checkpoint of every seed")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Per seed: raw and step-partial Spearman of entropy vs accuracy, and each rule's pick."""
    from miniature import mean_interval

    raw, partial, chosen = [], [], {"entropy": [], "last": [], "train_reward": []}
    for points in runs:
        measured = [p for p in points if p["critical_entropy"] is not None]
        entropy = [p["critical_entropy"] for p in measured]
        accuracy = [p["heldout_accuracy"] for p in measured]
        raw.append(spearman(entropy, accuracy))
        partial.append(partial_spearman(entropy, accuracy, [p["step"] for p in measured]))
        for rule, value in picks(points).items():
            chosen[rule].append(value)
    return {
        "spearman": raw,
        "partial_spearman": partial,
        # Over seeds, the seeds where the correlation is defined (a constant side leaves it undefined).
        "spearman_over_seeds": _over_seeds(raw),
        "partial_spearman_over_seeds": _over_seeds(partial),
        "picks": {rule: {"heldout_accuracy": v, **mean_interval(v)} for rule, v in chosen.items() if v},
        # R1V3's rule against each other, paired by seed (same run, same checkpoints): the verdict.
        "entropy_minus": {
            rule: mean_interval([e - o for e, o in zip(chosen["entropy"], chosen[rule], strict=True)])
            for rule in ("last", "train_reward")
            if chosen["entropy"]
        },
    }


def _over_seeds(values: list[float | None]) -> dict[str, Any] | None:
    """Mean and 95 % bootstrap interval of the defined values, with how many seeds defined one."""
    from miniature import mean_interval

    defined = [v for v in values if v is not None]
    return {**mean_interval(defined), "seeds_defined": len(defined)} if defined else None


def main(argv: list[str] | None = None) -> int:
    from miniature import benchmark_parser, parse

    parser = benchmark_parser(__doc__)
    parser.add_argument(
        "--rollouts", type=int, default=3840, help="generated rollouts (ssb_learning's budget)"
    )
    parser.add_argument("--eval-every", type=int, default=20, help="updates between checkpoints measured")
    parser.add_argument("--entropy-generations", type=int, default=2, help="rollouts per held-out prompt")
    parser.add_argument("--words", nargs="+", default=["red", "blue", "green", "orange"])
    parser.add_argument(
        "--seeds", type=int, default=5, help="GRPO runs, seeds first-seed, first-seed + 1, ..."
    )
    args = parse(parser, argv, jobs=2)
    if args.smoke:
        args.rollouts, args.eval_every, args.seeds = 16, 1, 1
    from concurrent.futures import ProcessPoolExecutor

    from miniature import baselines, begin, provenance, seeds

    wall, _, start = begin(args)
    run_seeds = seeds(args, args.seeds)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_seed, [(args, start, seed) for seed in run_seeds]))
    result = {
        "seeds": run_seeds,
        "checkpoints": runs,
        **summarize(runs),
        "words": args.words,
        **baselines(args),
        **provenance(args, wall),
    }
    write_atomic(args.out / "entropy_selection.json", json.dumps(result, indent=2))
    plot(result, args.out / "entropy_selection.png")
    for seed, points in zip(run_seeds, runs, strict=True):
        for p in points:
            print(seed, p)
    print({k: result[k] for k in ("spearman", "partial_spearman", "picks")})
    print(f"wall {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
