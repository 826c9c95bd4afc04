"""Does the Selective Sample Buffer make GRPO learn faster? Held-out accuracy per generated rollout.

R1V2 claims SSB makes GRPO more efficient: as a policy gets better, more prompt groups have all
rollouts right (or all wrong), their advantages are zero, and plain GRPO's "effective samples fall
from about 60 % to below 40 %". This benchmark measures learning, not the mechanism, on the
miniature (`miniature.py`: the `quadrant_color` task of `skywork_rl.miniature.grid` or `--task`'s, the tiny InternVL,
GRPO settings and held-out protocol shared with `entropy_selection.py` and `r1v3_ablations.py`):

1. a weak start: the tiny model after a short SFT (the `sft` stage) on the train split;
2. from it, with the same budget of generated rollouts, the same model and RL prompts, 5 seeds:
   ``plain`` GRPO (`SSBGRPOTrainer`, ``ssb_enabled: false``), ``ssb`` (R1V2's buffer) and
   ``dynamic_sampling`` (DAPO: zero-std groups dropped, more prompts generated until the update is
   full; `ssb_efficiency.DynamicSamplingGRPOTrainer`);
3. every `--eval-every` updates, held-out accuracy (`skywork_rl.miniature.heldout`) on problems of the
   held-out split, which no training split holds, by R1V3's evaluation protocol (temperature 1.0,
   avg@5, fixed seeds; `--heldout-temperature 0` for greedy); the reward is the project's accuracy
   reward.

Writes ``ssb_learning.json`` ({"variants": {name: {heldout_accuracy_start, heldout_accuracy_final
(per seed), rollouts_to_target (per seed, null: not reached), heldout_curve (per seed,
[[rollouts, accuracy], ...]), informative_curve (per seed, [[rollouts, share of the update's
samples with non-zero advantage], ...]), ssb_metrics (per seed, the trainer's per-update
``ssb/*`` values), final_accuracy and rollouts_to_target_censored ({mean, ci95}: the 95 % bootstrap
interval over seeds; a seed that never reached the target counts as the budget)}}, "target_accuracy":
x, "memorization_baseline": m, "chance_accuracy": c, "setup": {...}}) and ``ssb_learning.png`` (both
curves, mean and min-max over seeds) into ``--out``, and the splits into ``--out/data``.

With ``--sweep-max-age A B ...`` and/or ``--sweep-fill-ratio F G ...`` it runs SSB alone at each
setting (the other knob at its default) and writes ``ssb_sweep.json`` instead: per setting the
held-out accuracy per seed and the buffer's own metrics averaged over updates (effective ratio,
effective token ratio after PPO clipping, mean replay age, samples injected per update).

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

from skywork_rl.records.atomic import save_figure, write_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("plain", "ssb", "dynamic_sampling")
COLORS = {"plain": "tab:gray", "ssb": "tab:blue", "dynamic_sampling": "tab:orange"}
SSB_METRICS = ("ssb/effective_ratio", "ssb/effective_token_ratio", "ssb/replay_age_mean", "ssb/injected")


def make_job(
    args: argparse.Namespace,
    start: Path,
    variant: str,
    seed: int,
    *,
    rollouts: int,
    eval_every: int,
    name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `run_one` job. `extra`: ``ssb_max_age`` / ``ssb_max_fill_ratio`` (else `grpo_config`'s
    defaults), ``save_to`` (keep the trained model there)."""
    return {
        "args": args,
        "start": start,
        "variant": variant,
        "seed": seed,
        "rollouts": rollouts,
        "eval_every": eval_every,
        "name": name or f"{variant}-{seed}",
        **extra,
    }


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One variant, one seed: GRPO from the start model until the rollout budget is spent."""
    import torch
    from miniature import grpo_config, heldout_accuracy, heldout_rows, miniature_grpo
    from ssb_efficiency import RecordingDynamicSampling, RecordingGRPO
    from transformers import TrainerCallback

    from skywork_rl.families.parts import load_model_and_processor

    torch.set_num_threads(1)
    args, variant, seed = job["args"], job["variant"], job["seed"]
    torch.manual_seed(seed)
    model, processor = load_model_and_processor(str(job["start"]))
    heldout = heldout_rows(args)
    buffer = {k: job[k] for k in ("ssb_max_age", "ssb_max_fill_ratio") if k in job}
    config = grpo_config(
        args,
        args.out / "runs" / job["name"],
        rollouts=job["rollouts"],
        seed=seed,
        ssb_enabled=variant == "ssb",
        **buffer,
    )
    eval_every = job["eval_every"]
    curve = [[0, heldout_accuracy(model, processor, heldout, args)]]
    informative: list[list[float]] = []
    ssb: dict[str, list[float]] = {name: [] for name in SSB_METRICS}

    class Record(TrainerCallback):
        def on_step_end(self, targs, state, control, **kwargs):  # noqa: ANN001
            if trainer.update_sizes:
                share = trainer.informative_per_update[-1] / max(trainer.update_sizes[-1], 1)
                informative.append([trainer.generated, share])
            # The trainer's own per-update SSB metrics (kept until it logs, which it does at the end).
            for name in SSB_METRICS:
                logged = trainer._metrics["train"].get(name, [])
                if len(logged) > len(ssb[name]):
                    ssb[name].extend(logged[len(ssb[name]) :])
            if state.global_step % eval_every == 0 or trainer.generated >= trainer.budget:
                curve.append([trainer.generated, heldout_accuracy(model, processor, heldout, args)])
            return control

    trainer_class = RecordingDynamicSampling if variant == "dynamic_sampling" else RecordingGRPO
    trainer = miniature_grpo(trainer_class, model, processor, config, args, job["rollouts"], Record())
    started = time.process_time()
    trainer.train()
    if curve[-1][0] != trainer.generated:
        curve.append([trainer.generated, heldout_accuracy(model, processor, heldout, args)])
    if job.get("save_to"):  # the trained model, for a stage that continues from it (r1v3_ablations.py)
        trainer.save_model(str(job["save_to"]))
        processor.save_pretrained(str(job["save_to"]))
    return {
        "variant": variant,
        "seed": seed,
        "curve": curve,
        "informative": informative,
        "ssb_metrics": {name: values for name, values in ssb.items() if values},
        "ssb_max_age": config.ssb_max_age,
        "ssb_max_fill_ratio": config.ssb_max_fill_ratio,
        "updates": trainer.state.global_step,
        "cpu_s": time.process_time() - started,
    }


def rollouts_to_target(curve: list[list[float]], target: float) -> float | None:
    """Rollouts generated when held-out accuracy first reached `target` (None: never)."""
    return next((rollouts for rollouts, accuracy in curve if accuracy >= target), None)


def summarize(runs: list[dict[str, Any]], target: float, budget: int | None = None) -> dict[str, Any]:
    """The JSON's ``variants`` block from the runs of every variant and seed, with the mean and 95 %
    bootstrap interval over seeds of the final accuracy and of the rollouts to target (a seed that
    never reached it counts as `budget`, the most it could have taken: the interval is then a bound)."""
    from miniature import mean_interval

    out: dict[str, Any] = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        mine = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        out[variant] = {
            "seeds": [r["seed"] for r in mine],
            "heldout_accuracy_start": mine[0]["curve"][0][1],
            "heldout_accuracy_final": [r["curve"][-1][1] for r in mine],
            "rollouts_to_target": [rollouts_to_target(r["curve"], target) for r in mine],
            "heldout_curve": [r["curve"] for r in mine],
            "informative_curve": [r["informative"] for r in mine],
            "ssb_metrics": [r["ssb_metrics"] for r in mine],
            "updates": [r["updates"] for r in mine],
            "cpu_s": [round(r["cpu_s"], 1) for r in mine],
        }
        finals = out[variant]["heldout_accuracy_final"]
        out[variant]["final_accuracy"] = mean_interval(finals)
        if budget is not None:
            to_target = [budget if r is None else r for r in out[variant]["rollouts_to_target"]]
            out[variant]["rollouts_to_target_censored"] = mean_interval(to_target)
    return out


def versus_plain(variants: dict[str, Any], budget: int) -> dict[str, Any]:
    """Each variant minus plain GRPO, paired by seed (same start, same seed): final held-out accuracy
    and rollouts to target (never reached: the budget), mean and 95 % bootstrap interval over seeds."""
    from miniature import mean_interval

    if "plain" not in variants:
        return {}
    plain = variants["plain"]
    results = zip(plain["heldout_accuracy_final"], plain["rollouts_to_target"], strict=True)
    by_seed = dict(zip(plain["seeds"], results, strict=True))
    out = {}
    for name, variant in variants.items():
        if name == "plain":
            continue
        pairs = [
            (final, to_target, *by_seed[seed])
            for seed, final, to_target in zip(
                variant["seeds"],
                variant["heldout_accuracy_final"],
                variant["rollouts_to_target"],
                strict=True,
            )
            if seed in by_seed
        ]
        if not pairs:
            continue
        censor = lambda r: budget if r is None else r  # noqa: E731
        out[name] = {
            "final_accuracy_minus_plain": mean_interval([f - pf for f, _, pf, _ in pairs]),
            "rollouts_to_target_minus_plain": mean_interval(
                [censor(t) - censor(pt) for _, t, _, pt in pairs]
            ),
        }
    return out


def learned(variant: dict[str, Any], memorization_baseline: float, margin: float = 0.15) -> bool:
    """Whether a variant learned the skill rather than recalled pictures: its mean final held-out
    accuracy over seeds at least `margin` above the memorisation baseline (issue 23's target)."""
    finals = variant["heldout_accuracy_final"]
    return sum(finals) / len(finals) >= memorization_baseline + margin


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
        ax.set_ylim(0, 1.03)  # dynamic sampling sits at 1.0: keep its line visible
    axes[0].axhline(result["target_accuracy"], color="k", ls=":", lw=1, label="target")
    axes[0].legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def sweep_summary(runs: list[dict[str, Any]], target: float) -> list[dict[str, Any]]:
    """One row per swept (max_age, fill_ratio): accuracy per seed and the buffer's own metrics."""
    rows = []
    for key in dict.fromkeys((r["ssb_max_age"], r["ssb_max_fill_ratio"]) for r in runs):
        mine = sorted(
            (r for r in runs if (r["ssb_max_age"], r["ssb_max_fill_ratio"]) == key), key=lambda r: r["seed"]
        )

        def mean_of(name: str, mine: list[dict[str, Any]] = mine) -> float | None:
            values = [v for r in mine for v in r["ssb_metrics"].get(name, [])]
            return round(sum(values) / len(values), 4) if values else None

        rows.append(
            {
                "ssb_max_age": key[0],
                "ssb_max_fill_ratio": key[1],
                "seeds": [r["seed"] for r in mine],
                "heldout_accuracy_final": [r["curve"][-1][1] for r in mine],
                "heldout_accuracy_best": [max(a for _, a in r["curve"]) for r in mine],
                "rollouts_to_target": [rollouts_to_target(r["curve"], target) for r in mine],
                "effective_ratio": mean_of("ssb/effective_ratio"),
                "effective_token_ratio": mean_of("ssb/effective_token_ratio"),
                "replay_age_mean": mean_of("ssb/replay_age_mean"),
                "injected_per_update": mean_of("ssb/injected"),
                "heldout_curve": [r["curve"] for r in mine],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    from miniature import baselines, begin, benchmark_parser, parse, provenance, seeds

    parser = benchmark_parser(__doc__, start=False)
    parser.add_argument(
        "--seeds", type=int, default=5, help="runs per variant: first-seed, first-seed + 1, ..."
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--rollouts", type=int, default=3840, help="generated rollouts per run (the budget)")
    parser.add_argument("--eval-every", type=int, default=40, help="updates between held-out evaluations")
    parser.add_argument("--target-gain", type=float, default=0.15, help="target = start accuracy + this")
    parser.add_argument("--ssb-max-age", type=int, default=8)
    parser.add_argument("--ssb-max-fill-ratio", type=float, default=0.5)
    parser.add_argument(
        "--sweep-max-age",
        type=int,
        nargs="+",
        default=None,
        help="instead of the variants: SSB at each of these max ages (fill ratio --ssb-max-fill-ratio); "
        "writes ssb_sweep.json",
    )
    parser.add_argument(
        "--sweep-fill-ratio",
        type=float,
        nargs="+",
        default=None,
        help="instead of the variants: SSB at each of these fill ratios (max age --ssb-max-age)",
    )
    args = parse(parser, argv, jobs=3)
    if args.smoke:
        args.seeds, args.rollouts, args.eval_every = 1, 16, 1
    wall, _, start = begin(args)
    sweep = args.sweep_max_age is not None or args.sweep_fill_ratio is not None
    budget = {"rollouts": args.rollouts, "eval_every": args.eval_every}
    if sweep:
        points = [(age, args.ssb_max_fill_ratio) for age in args.sweep_max_age or []]
        points += [(args.ssb_max_age, fill) for fill in args.sweep_fill_ratio or []]
        jobs = [
            make_job(
                args,
                start,
                "ssb",
                s,
                **budget,
                name=f"ssb-age{age}-fill{fill}-{s}",
                ssb_max_age=age,
                ssb_max_fill_ratio=fill,
            )
            for s in seeds(args, args.seeds)
            for age, fill in dict.fromkeys(points)
        ]
    else:
        knobs = {"ssb_max_age": args.ssb_max_age, "ssb_max_fill_ratio": args.ssb_max_fill_ratio}
        jobs = [
            make_job(args, start, v, s, **budget, **knobs)
            for s in seeds(args, args.seeds)
            for v in args.variants
        ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_one, jobs))
    start_accuracy = runs[0]["curve"][0][1]
    target = round(start_accuracy + args.target_gain, 4)
    if sweep:
        rows = sweep_summary(runs, target)
        result = {
            "sweep": rows,
            "heldout_accuracy_start": start_accuracy,
            **baselines(args),
            "target_accuracy": target,
            **provenance(args, wall),
        }
        write_atomic(args.out / "ssb_sweep.json", json.dumps(result, indent=2))
        for row in rows:
            print({k: v for k, v in row.items() if k != "heldout_curve"})
        print(f"wall {result['wall_s']} s")
        return 0
    result = {
        "variants": summarize(runs, target, args.rollouts),
        "target_accuracy": target,
        **baselines(args),
        **provenance(args, wall),
    }
    result["versus_plain"] = versus_plain(result["variants"], args.rollouts)
    write_atomic(args.out / "ssb_learning.json", json.dumps(result, indent=2))
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
