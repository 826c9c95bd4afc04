"""The miniature the learning benchmarks share: task, splits, weak start, GRPO settings, held-out protocol.

`ssb_learning.py`, `entropy_selection.py` and `r1v3_ablations.py` answer different questions about
the same learning run, so they must train and measure it the same way: one task, one set of splits
(saved under ``--out/data/{train,rl,heldout}``), one weak start, one set of GRPO settings and one
held-out protocol. A change here changes all three, which is the point.

The task is ``quadrant_color`` (`skywork_rl.miniature.grid`): four squares, one per quadrant, of
random colours; "what colour is the top left square?". The trace reads the four quadrants in order,
then picks the one asked. Its held-out split is disjoint in content: a picture showing both colours
of a held-out pair (green + red, blue + orange) is held-out, so no train or RL picture shows them
together, and the answer depends on the question, which a picture alone does not give. Each
benchmark's JSON reports `memorization_baseline` (each held-out problem answered with the answer of
the nearest train or RL picture, pixels at 56 px: 0.35) beside `chance_accuracy` (0.25). The old
task (`shape_color`, split by key only) was answered 0.92-0.96 by that memory.

Defaults: a start of 200 SFT steps on 128 train rows (held-out 0.37 at temperature 1.0, avg@5; 0.26
after 100 steps), then GRPO at lr 5e-4 with a 10-update warmup, rollouts at temperature 0.7,
completions of up to 32 tokens (the traces are 27). Without the warmup the first Adam steps, which
move every weight by about lr, undo much of the SFT. At these settings plain GRPO did not raise
held-out accuracy on this split (5 seeds: 0.377 -> 0.343, memorisation 0.354; docs/SSB.md "Learning, not
signal", benchmarks/RESULTS.md, with the settings tried).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from skywork_rl.miniature.grid import COMPOSITIONAL_TASKS

TASKS = ("quadrant_color",)  # the default task; `--task` picks another compositional one
HELDOUT_SEED, RL_SEED, TRAIN_SEED = 999, 7, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The miniature's knobs, with the defaults every learning benchmark measures at."""
    group = parser.add_argument_group("miniature (shared by the learning benchmarks)")
    group.add_argument(
        "--task",
        default=TASKS[0],
        choices=sorted(COMPOSITIONAL_TASKS),
        help="the compositional task (skywork_rl.miniature.grid) the splits are drawn from",
    )
    group.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the runs' seeds are first-seed, first-seed + 1, ...: re-run on seeds nobody tuned on",
    )
    group.add_argument("--prompts-per-step", type=int, default=8)
    group.add_argument("--num-generations", type=int, default=4)
    group.add_argument("--max-completion-length", type=int, default=32)
    group.add_argument("--temperature", type=float, default=0.7, help="GRPO rollout temperature")
    group.add_argument("--learning-rate", type=float, default=5e-4, help="GRPO learning rate")
    group.add_argument(
        "--warmup-steps",
        type=int,
        default=10,
        help="GRPO linear lr warmup (updates): Adam's first steps move every weight by about lr, "
        "which at 1e-3 undoes much of what SFT taught the tiny model",
    )
    group.add_argument("--sft-steps", type=int, default=200, help="SFT steps of the weak start")
    group.add_argument("--train-rows", type=int, default=128)
    group.add_argument("--rl-rows", type=int, default=256)
    group.add_argument("--heldout-rows", type=int, default=96)
    group.add_argument(
        "--heldout-temperature", type=float, default=1.0, help="R1V3 evaluates at 1.0; 0: greedy"
    )
    group.add_argument("--heldout-samples", type=int, default=5, help="avg@k samples per held-out row")


def smoke(args: argparse.Namespace) -> None:
    """Shrink the miniature so a run checks the outputs in seconds (not the result)."""
    args.sft_steps, args.prompts_per_step, args.warmup_steps = 2, 2, 0
    args.train_rows, args.rl_rows, args.heldout_rows, args.heldout_samples = 8, 8, 4, 1


def benchmark_parser(doc: str, *, start: bool = True) -> argparse.ArgumentParser:
    """A learning benchmark's command line up to its own options: the first paragraph of its
    docstring as description, ``--out`` and (``start``) ``--start``. `parse` adds the shared tail."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    if start:
        parser.add_argument(
            "--start", type=Path, default=None, help="start model (default: the miniature's weak start)"
        )
    return parser


def parse(
    parser: argparse.ArgumentParser, argv: list[str] | None, *, jobs: int | None = None
) -> argparse.Namespace:
    """The shared tail of a learning benchmark's command line (``--jobs`` when ``jobs`` gives its
    default, ``--smoke``, the miniature's knobs), parsed; ``--smoke`` shrinks the miniature."""
    if jobs is not None:
        parser.add_argument("--jobs", type=int, default=jobs, help="runs in parallel (one torch thread each)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny budget (checks the outputs, not the result)"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        smoke(args)
    return args


def begin(args: argparse.Namespace) -> tuple[float, dict[str, Path], Path]:
    """What every learning benchmark does first: one torch thread per process (on 2 shared cores more
    threads only contend), ``--out`` made, the splits saved, the start model (``--start`` or the
    weak start built). Returns the wall-clock start, the splits and the start model."""
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    wall = time.time()
    splits = save_splits(args)
    return wall, splits, getattr(args, "start", None) or build_start(args)


def provenance(args: argparse.Namespace, wall: float) -> dict[str, Any]:
    """The ``setup`` (every argument, paths as text) and ``wall_s`` a benchmark's JSON ends with."""
    return {
        "setup": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "wall_s": round(time.time() - wall, 1),
    }


SPLIT_SEEDS = {"train": TRAIN_SEED, "rl": RL_SEED, "heldout": HELDOUT_SEED}


def split_sizes(args: argparse.Namespace) -> dict[str, int]:
    return {"train": args.train_rows, "rl": args.rl_rows, "heldout": args.heldout_rows}


def save_splits(args: argparse.Namespace) -> dict[str, Path]:
    """The splits every benchmark run trains and measures on, as `datasets` folders under
    ``--out/data/{train,rl,heldout}`` (the full canonical rows: prompt, image, answer, gold trace, id),
    so anyone can recompute the memorisation baseline or re-run on exactly these problems.

    A split is written when absent or when what it was drawn with (task, rows, seed) changed, and
    reused otherwise: rewriting it would change its files' times and so the start's input fingerprint,
    which rebuilds the start (`build_start`)."""
    import json

    from skywork_rl.miniature.synthetic import build_dataset
    from skywork_rl.records.atomic import atomic_folder

    data = args.out / "data"
    data.mkdir(parents=True, exist_ok=True)
    record = data / "splits.json"
    written = json.loads(record.read_text()) if record.exists() else {}
    paths = {}
    for split, rows in split_sizes(args).items():
        tasks = (getattr(args, "task", TASKS[0]),)
        spec = {"tasks": list(tasks), "rows": rows, "seed": SPLIT_SEEDS[split]}
        path = paths[split] = data / split
        if written.get(split) != spec or not path.exists():
            with atomic_folder(path) as tmp:
                build_dataset(rows, seed=spec["seed"], tasks=tasks, split=split).save_to_disk(str(tmp))
            written[split] = spec
            record.write_text(json.dumps(written, indent=2))
    return paths


def load_split(args: argparse.Namespace, split: str) -> Any:
    """A split `save_splits` wrote (a clear error if the benchmark did not write it first)."""
    from datasets import load_from_disk

    path = args.out / "data" / split
    if not path.exists():
        raise FileNotFoundError(f"miniature: {path} is missing; call save_splits(args) before training")
    return load_from_disk(str(path))


def heldout_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    return list(load_split(args, "heldout").select_columns(["prompt", "images", "solution", "source"]))


def miniature_grpo(
    trainer_class: type,
    model: Any,
    processor: Any,
    config: Any,
    args: argparse.Namespace,
    budget: int,
    callback: Any,
) -> Any:
    """`trainer_class` (a GRPO trainer with ssb_efficiency's `Recording`) on the RL rows, rewarded by
    the accuracy reward, with `callback`, until `budget` rollouts are generated. Scoring is in-process
    (num_workers=0): completions are <= max_completion_length tokens, and worker deadlines on a loaded
    machine would score some of them 0.0 for no reason of theirs."""
    from skywork_rl.rewards.accuracy import AccuracyReward

    return trainer_class(
        model=model,
        reward_funcs=AccuracyReward(num_workers=0),
        args=config,
        train_dataset=rl_dataset(args),
        processing_class=processor,
        callbacks=[callback],
        budget=budget,
    )


def rl_dataset(args: argparse.Namespace) -> Any:
    return load_split(args, "rl").select_columns(["prompt", "images", "solution"])


def train_data(args: argparse.Namespace) -> Path:
    """The train split's traces (the start's SFT data)."""
    return save_splits(args)["train"]


def _pixels(rows: list[dict[str, Any]]) -> Any:
    import numpy as np

    from skywork_rl.families.base import IMAGE_SIZE

    return np.stack(
        [
            np.asarray(
                row["images"][0].convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE)), dtype=np.float32
            ).ravel()
            for row in rows
        ]
    )


def memorization_baseline(heldout: list[dict[str, Any]], memory: list[dict[str, Any]]) -> float:
    """Held-out accuracy of answering each problem with the answer of the memory problem whose image
    is nearest (Euclidean distance of the pixels at the tiny models' 56 px; the first on a tie): what
    recalling the training pictures, with no skill, scores. `memory`: the train and RL splits."""
    import numpy as np

    if not heldout or not memory:
        raise ValueError("memorization_baseline: needs held-out rows and memory rows (train + RL)")
    held, mem = _pixels(heldout), _pixels(memory)
    # |h - m|^2 = |h|^2 - 2 h.m + |m|^2; |h|^2 is the same for every m of a row, so it drops out
    distance = (mem**2).sum(1)[None, :] - 2.0 * held @ mem.T
    nearest = distance.argmin(1)
    answers = np.array([row["solution"] for row in memory])[nearest]
    return float(np.mean([a == row["solution"] for a, row in zip(answers, heldout, strict=True)]))


def chance_accuracy(heldout: list[dict[str, Any]]) -> float:
    """Accuracy of a uniform guess among the answers the held-out problems have."""
    return 1.0 / len({row["solution"] for row in heldout})


def seeds(args: argparse.Namespace, count: int) -> list[int]:
    return list(range(args.first_seed, args.first_seed + count))


def bootstrap_interval(
    values: list[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> list[float] | None:
    """Percentile bootstrap interval of the mean over seeds: `values` (one per seed) resampled with
    replacement `resamples` times (a fixed generator, so the interval is reproducible). None with
    fewer than two values (no spread to resample)."""
    import numpy as np

    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return [round(float(low), 4), round(float(high), 4)]


def mean_interval(values: list[float]) -> dict[str, Any]:
    """``{"mean": m, "ci95": [low, high]}`` over seeds (the 95 % bootstrap interval of the mean)."""
    return {"mean": round(sum(values) / len(values), 4), "ci95": bootstrap_interval(values)}


def claim_verdict(interval: list[float] | None, *, null: bool = False) -> str:
    """A paper claim's verdict from the 95 % interval of its paired difference, the claimed effect
    counted positive: "reproduced" when the whole interval is above zero, "reversed" when it is below,
    "not resolved" when it holds zero (the seeds cannot tell the arms apart). A `null` claim (the
    paper saw no effect, e.g. R1V3 on dynamic sampling) cannot be proven by an interval, only
    contradicted: "contradicted" when the interval excludes zero, else "not contradicted". Raises
    without an interval: one seed has no spread to judge by."""
    if interval is None:
        raise ValueError("claim_verdict: no interval (fewer than two seeds); run --seeds 5")
    low, high = interval
    if null:
        return "not contradicted" if low <= 0 <= high else "contradicted"
    return "reproduced" if low > 0 else "reversed" if high < 0 else "not resolved"


def baselines(args: argparse.Namespace) -> dict[str, float]:
    """`memorization_baseline` (memory: train + RL splits) and `chance_accuracy` of the saved splits."""
    heldout = list(load_split(args, "heldout"))
    memory = [*load_split(args, "train"), *load_split(args, "rl")]
    return {
        "memorization_baseline": round(memorization_baseline(heldout, memory), 4),
        "chance_accuracy": round(chance_accuracy(heldout), 4),
    }


def build_start(args: argparse.Namespace) -> Path:
    """The weak start: tiny model, then `--sft-steps` of the `sft` stage on the train split.

    Kept in --out and reused by a later run only when its stage.json fingerprint (the SFT config,
    which names the train folder, and its inputs) is the one this run would compute: a changed
    `--sft-steps` or `--train-rows` rebuilds it instead of measuring from a stale start.
    """
    from skywork_rl.miniature.tiny import make_tiny_model
    from skywork_rl.records.atomic import atomic_folder
    from skywork_rl.records.fingerprint import read_record
    from skywork_rl.stages.base import is_complete, parse_stage_config, run_stage, stage_fingerprint
    from skywork_rl.stages.sft import SFTStage

    base, start = args.out / "tiny", args.out / "start"
    if not base.exists():
        with atomic_folder(base) as tmp:
            make_tiny_model("internvl", tmp, seed=0)
    argv = [
        f"--model.name_or_path={base}",
        f"--data.train={train_data(args)}",
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
    stage = SFTStage(parse_stage_config(SFTStage, argv))
    if is_complete(start):
        recorded = (read_record(start) or {}).get("fingerprint") or {}
        wanted, _ = stage_fingerprint(stage)
        if (recorded.get("config"), recorded.get("inputs")) == (wanted["config"], wanted["inputs"]):
            return start
    run_stage(stage, force=True)
    return start


def grpo_config(
    args: argparse.Namespace,
    output_dir: Path,
    *,
    rollouts: int,
    seed: int,
    ssb_enabled: bool,
    ssb_max_age: int = 8,
    ssb_max_fill_ratio: float = 0.5,
) -> Any:
    """The miniature's GRPO: `rollouts` generated in updates of prompts-per-step x num-generations."""
    from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

    batch = args.prompts_per_step * args.num_generations
    return SkyworkGRPOConfig(
        output_dir=str(output_dir),
        max_steps=max(rollouts // batch, 1),
        per_device_train_batch_size=batch,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        temperature=args.temperature,
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=args.warmup_steps,
        beta=0.0,
        loss_type="dapo",
        ssb_enabled=ssb_enabled,
        ssb_max_age=ssb_max_age,
        ssb_max_fill_ratio=ssb_max_fill_ratio,
        bf16=False,
        use_cpu=True,
        report_to=[],
        logging_steps=10**6,
        save_strategy="no",
        seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def heldout_accuracy(
    model: Any, processor: Any, rows: list[dict[str, Any]], args: argparse.Namespace
) -> float:
    """Held-out accuracy by the benchmark's protocol (R1V3's: temperature 1.0, avg@5; or greedy)."""
    from skywork_rl.generation.protocol import SamplingParams
    from skywork_rl.miniature.heldout import heldout_result

    return heldout_result(
        model,
        processor,
        rows,
        sampling=SamplingParams(
            max_new_tokens=args.max_completion_length, temperature=args.heldout_temperature
        ),
        num_samples=args.heldout_samples if args.heldout_temperature > 0 else 1,
    ).accuracy


def stage_heldout_argv(args: argparse.Namespace, data: Path) -> list[str]:
    """The same protocol as `sft` stage options (the stage records it in stage.json)."""
    return [
        f"--heldout.data={data}",
        f"--heldout.max_new_tokens={args.max_completion_length}",
        f"--heldout.temperature={args.heldout_temperature}",
        f"--heldout.num_samples={args.heldout_samples if args.heldout_temperature > 0 else 1}",
    ]
