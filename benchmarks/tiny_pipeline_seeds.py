"""The tiny pipeline's held-out gain of GRPO over SFT, over training seeds (issue #23 point 4).

For each seed, one at a time (every stage is CPU-heavy), writes a copy of ``recipes/tiny/pipeline.yaml``
whose training stages (sft, mpo, grpo, grpo-pool, connector) get ``training.seed: <seed>`` as an
override and nothing else changed, and runs it as a user does (``skywork-rl run <copy>``: each stage
a process under `accelerate launch`). Seed 0 is the shipped pipeline (its recipes say ``seed: 0``).
What stays fixed across seeds (ours): the tiny models' initial weights, the rendered splits and the
held-out protocol (temperature 1.0, 5 samples per problem, fixed sampling seeds), so the spread is
that of training: data order, rollouts, dropout-free sampling during RL.

Writes into ``--out``, after each seed (a run cut short keeps what finished):
``tiny_pipeline_seeds.json`` (per seed: exit code, wall and CPU seconds, the 1-minute load average
before and after, the held-out accuracy after every stage and GRPO - SFT, and the ``training`` section
each training stage ran with, read from its ``recipe.yaml``, so a record can be checked against the
recipes as shipped; over seeds: min, mean with its 95 % bootstrap interval, max) and
``seed<N>_pipeline_report.json`` (each run's own report).

    python benchmarks/tiny_pipeline_seeds.py --out benchmarks/results/tiny_pipeline_seeds
    python benchmarks/tiny_pipeline_seeds.py --out DIR --first-seed 10 --seeds 5   # seeds nobody tuned on
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from families_pipeline import family_pipeline, run_pipeline_copy  # noqa: E402
from miniature import mean_interval  # noqa: E402

from skywork_rl.records.atomic import write_atomic  # noqa: E402

TRAINING_STAGES = ("sft", "mpo", "grpo", "connector")
# The training values that differ by run, not by recipe: left out of a recorded training section.
RUN_ONLY = ("output_dir", "seed")


def seeded_pipeline(seed: int) -> dict[str, Any]:
    """The shipped tiny pipeline (paths made absolute) with every training stage's ``training.seed``
    set to `seed` (the shipped policy model, ``arch: internvl``, unchanged)."""
    spec = family_pipeline("internvl")
    for entry in spec["stages"]:
        if entry["stage"] in TRAINING_STAGES:
            entry.setdefault("overrides", {}).setdefault("training", {})["seed"] = seed
    return spec


def training_sections(root: Path, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``training`` section each training stage of `spec` ran with: its ``recipe.yaml`` (the
    config the stage process read) in the run folder `root`, without the two values that differ by
    run and not by recipe (`RUN_ONLY`)."""
    sections = {}
    for entry in spec["stages"]:
        if entry["stage"] in TRAINING_STAGES:
            training = yaml.safe_load((root / entry["id"] / "recipe.yaml").read_text())["training"]
            sections[entry["id"]] = {k: v for k, v in training.items() if k not in RUN_ONLY}
    return sections


def run_seed(seed: int, out: Path) -> dict[str, Any]:
    """`skywork-rl run` the pipeline of one seed; never raises for a failed run (it is recorded)."""
    spec = seeded_pipeline(seed)
    result, root = run_pipeline_copy(spec, out / f"seed{seed}")
    result = {"seed": seed, **result}
    report_path = root / "pipeline_report.json"
    if result["exit_code"] or not report_path.exists():
        result["status"] = "failed"
        return result
    shutil.copyfile(report_path, out / f"seed{seed}_pipeline_report.json")
    heldout = json.loads(report_path.read_text())["heldout_accuracy"]
    result.update(status="ran", heldout_accuracy=heldout)
    result["grpo_minus_sft"] = round(heldout["grpo"] - heldout["sft"], 4)
    result["training"] = training_sections(root, spec)
    return result


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """GRPO - SFT over the seeds that ran: min, max, and the mean with its 95 % bootstrap interval."""
    gains = [r["grpo_minus_sft"] for r in results if r.get("status") == "ran"]
    if not gains:
        return {"seeds": 0}
    return {"seeds": len(gains), "min": min(gains), "max": max(gains), **mean_interval(gains)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/tiny_pipeline_seeds"))
    parser.add_argument("--first-seed", type=int, default=0, help="the first training seed (0: as shipped)")
    parser.add_argument("--seeds", type=int, default=5, help="how many consecutive seeds")
    parser.add_argument("--keep-runs", action="store_true", help="keep each seed's output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        results.append(run_seed(seed, args.out))
        if not args.keep_runs:  # models and checkpoints: hundreds of MB a seed
            shutil.rmtree(args.out / f"seed{seed}" / "run", ignore_errors=True)
        record = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} CPU cores",
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "varied": "training.seed of the training stages " + ", ".join(TRAINING_STAGES),
            "runs": results,
            "grpo_minus_sft": summary(results),
        }
        write_atomic(args.out / "tiny_pipeline_seeds.json", json.dumps(record, indent=2))
        print(json.dumps({k: results[-1].get(k) for k in ("seed", "status", "seconds", "grpo_minus_sft")}))
    failed = [r["seed"] for r in results if r["status"] != "ran"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
