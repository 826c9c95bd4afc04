"""R1V3's two comparisons in the miniature: RL vs SFT on the same prompts, connector-only after RL.

1. From one weak start (the `sft` stage briefly on the train split, as `ssb_learning.py`), the RL
   prompts are used twice: ``sft_on_rl_traces`` fine-tunes with the `sft` stage on traces the start
   model sampled on them (``--trace-samples`` per prompt at temperature 1.0, kept when the accuracy
   checker verifies the answer: rejection sampling, as R1V3 distils; ``--gold-traces``: the
   generator's gold traces instead), ``grpo`` runs GRPO (``--grpo-variant``: plain by default, as
   R1V3 does not use the buffer; ``ssb``: `SSBGRPOTrainer` with it, the runs recorded before
   2026-12-07) on the same prompts, the same number of updates of the same number of prompts.
2. From the GRPO model, the `sft` stage on the train split's traces with ``trainable: [connector]``
   (R1V3's connector-only tuning) vs ``trainable: [llm, connector]``, same steps and data.

Every arm reports held-out accuracy (`skywork_rl.miniature.heldout`, the miniature's protocol: R1V3's
temperature 1.0, avg@5) on the held-out split, per seed. Task, splits, start, GRPO settings: `miniature.py`.
Writes ``r1v3_ablations.json`` ({"start": acc, "arms": {arm: {"heldout_accuracy": [per seed],
"mean": m, "ci95": [lo, hi]}}, "differences": {"a - b": {"mean", "ci95"}} paired by seed, "setup": {...}}) and ``r1v3_ablations.png`` into ``--out``.

    python benchmarks/r1v3_ablations.py --out outputs/benchmarks/r1v3_ablations
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from skywork_rl.records.atomic import save_figure, write_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))

ARMS = ("start", "sft_on_rl_traces", "grpo", "grpo+connector_only", "grpo+connector_and_llm")
# R1V3: RL generalises beyond SFT on the same prompts; connector-only tuning after RL beats (or keeps
# up with) tuning the LLM too, and adds to the RL model.
DIFFERENCES = (
    ("grpo", "sft_on_rl_traces"),
    ("grpo+connector_only", "grpo+connector_and_llm"),
    ("grpo+connector_only", "grpo"),
)


def sft(
    model: Path,
    data: Path,
    out: Path,
    heldout: Path,
    args: argparse.Namespace,
    seed: int,
    trainable: str,
    lr: float,
) -> float:
    """The `sft` stage from `model` on `data`; returns the held-out accuracy it records in stage.json."""
    from miniature import stage_heldout_argv

    from skywork_rl.stages.base import parse_stage_config, run_stage
    from skywork_rl.stages.sft import SFTStage

    argv = [
        f"--model.name_or_path={model}",
        f"--model.trainable={trainable}",
        f"--data.train={data}",
        f"--training.output_dir={out}",
        f"--training.max_steps={args.steps}",
        f"--training.per_device_train_batch_size={args.prompts_per_step}",
        f"--training.learning_rate={lr}",
        "--training.lr_scheduler_type=constant",
        "--training.save_strategy=no",
        "--training.use_cpu=true",
        "--training.report_to=[]",
        "--training.disable_tqdm=true",
        f"--training.seed={seed}",
        *stage_heldout_argv(args, heldout),
    ]
    return float(run_stage(SFTStage(parse_stage_config(SFTStage, argv)), force=True)["heldout/accuracy"])


def sampled_traces(
    start: Path, rl: Path, out: Path, args: argparse.Namespace, seed: int
) -> tuple[Path, dict[str, int]]:
    """The start model's own verified traces on the RL prompts, as SFT rows (rejection sampling):
    ``--trace-samples`` completions per prompt at temperature 1.0, kept when the accuracy checker
    scores the answer right. Returns the dataset folder and how many were sampled / kept / how many
    prompts kept at least one."""
    import torch
    from datasets import load_from_disk

    from skywork_rl.data.schema import assistant_message
    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.generation.protocol import SamplingParams
    from skywork_rl.miniature.heldout import heldout_result
    from skywork_rl.rewards.accuracy import score_accuracy_detailed

    torch.manual_seed(seed)
    model, processor = load_model_and_processor(str(start))
    data = load_from_disk(str(rl))
    rows = list(data.select_columns(["prompt", "images", "solution"]))
    k = args.trace_samples
    completions = heldout_result(
        model,
        processor,
        rows,
        sampling=SamplingParams(max_new_tokens=args.max_completion_length, temperature=1.0, seed=seed),
        num_samples=k,
    ).completions
    solutions = [row["solution"] for row in rows for _ in range(k)]
    scores = score_accuracy_detailed(completions, solutions, num_workers=0).scores
    kept = [i for i, score in enumerate(scores) if score == 1.0]
    if not kept:
        raise ValueError(
            f"r1v3_ablations: the start model answered none of {len(scores)} sampled RL traces right; "
            "nothing to distil (train a stronger start: --sft-steps)"
        )
    traces = data.select([i // k for i in kept]).remove_columns("completion")
    traces = traces.add_column("completion", [assistant_message(completions[i]) for i in kept])
    path = out / "sampled-traces"
    traces.save_to_disk(str(path))
    counts = {"sampled": len(scores), "verified": len(kept), "prompts": len({i // k for i in kept})}
    return path, counts


def main(argv: list[str] | None = None) -> int:
    from miniature import benchmark_parser, parse

    parser = benchmark_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--steps",
        type=int,
        default=120,
        help="updates of every arm (120 x 8 prompts x 4: ssb_learning's budget)",
    )
    parser.add_argument(
        "--sft-learning-rate", type=float, default=3e-3, help="SFT on RL traces (the tiny SFT recipe's)"
    )
    parser.add_argument(
        "--connector-learning-rate", type=float, default=1e-3, help="the tiny connector recipe's"
    )
    parser.add_argument(
        "--trace-samples", type=int, default=4, help="traces the start samples per RL prompt for SFT"
    )
    parser.add_argument(
        "--grpo-variant",
        choices=("plain", "ssb"),
        default="plain",
        help="the RL arm: plain GRPO (R1V3's; it does not use the buffer) or GRPO with the buffer",
    )
    parser.add_argument(
        "--gold-traces",
        action="store_true",
        help="SFT on the generator's gold traces instead of the start's verified samples",
    )
    args = parse(parser, argv)
    if args.smoke:
        args.seeds, args.steps = 1, 2
        args.gold_traces = True  # a 2-step start answers nothing right: no sampled trace to keep
    from miniature import baselines, begin, mean_interval, provenance, seeds
    from ssb_learning import make_job, run_one

    wall, splits, start = begin(args)
    heldout, rl_traces = splits["heldout"], splits["rl"]
    train = splits["train"]  # the train split's traces, for the connector arms
    # The GRPO arm's budget: the same updates of the same number of prompts as the SFT arm.
    rollouts = args.steps * args.prompts_per_step * args.num_generations
    arms: dict[str, list[float]] = {arm: [] for arm in ARMS}
    trace_counts: list[dict[str, int]] = []
    for seed in seeds(args, args.seeds):
        runs = args.out / f"seed{seed}"
        if args.gold_traces:
            traces = rl_traces
        else:
            traces, counts = sampled_traces(start, rl_traces, runs, args, seed)
            trace_counts.append(counts)
        arms["sft_on_rl_traces"].append(
            sft(
                start,
                traces,
                runs / "sft-rl",
                heldout,
                args,
                seed,
                "[llm, connector]",
                args.sft_learning_rate,
            )
        )
        grpo = run_one(  # held-out accuracy at the start and the end only
            make_job(
                args,
                start,
                args.grpo_variant,
                seed,
                rollouts=rollouts,
                eval_every=10**6,
                name=f"grpo-{seed}",
                save_to=runs / "grpo",
            )
        )
        arms["start"].append(grpo["curve"][0][1])
        arms["grpo"].append(grpo["curve"][-1][1])
        for arm, trainable in (
            ("grpo+connector_only", "[connector]"),
            ("grpo+connector_and_llm", "[llm, connector]"),
        ):
            arms[arm].append(
                sft(
                    runs / "grpo",
                    train,
                    runs / arm,
                    heldout,
                    args,
                    seed,
                    trainable,
                    args.connector_learning_rate,
                )
            )
        print({arm: values[-1] for arm, values in arms.items()}, flush=True)
    result = {
        "start": arms["start"][0],
        **baselines(args),
        "sampled_traces": trace_counts,
        "arms": {arm: {"heldout_accuracy": v, **mean_interval(v)} for arm, v in arms.items()},
        # The two comparisons, paired by seed (one start, one held-out set, one budget): the verdicts.
        "differences": {
            f"{a} - {b}": mean_interval([x - y for x, y in zip(arms[a], arms[b], strict=True)])
            for a, b in DIFFERENCES
        },
        **provenance(args, wall),
    }
    write_atomic(args.out / "r1v3_ablations.json", json.dumps(result, indent=2))
    plot(result, args.out / "r1v3_ablations.png")
    for arm, v in result["arms"].items():
        print(f"{arm:24s} mean={v['mean']:.3f} per seed={v['heldout_accuracy']}")
    return 0


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["arms"])
    fig, ax = plt.subplots(figsize=(10, 4))
    for i, name in enumerate(names):
        values = result["arms"][name]["heldout_accuracy"]
        ax.bar(i, statistics.mean(values), color="#9bb7d4")
        ax.scatter([i] * len(values), values, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy (mean, dots: seeds)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
