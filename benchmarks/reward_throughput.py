"""Accuracy-reward throughput: completions scored per second, one worker process vs all cores.

Builds realistic long chain-of-thought completions from GSM8K test problems (the reference
solution's steps wrapped in self-checking reasoning inside <think>, then a boxed answer), half
right and half wrong, with the answer written in the forms models use (``18``, ``\\$18``,
``18.00``, ``\\frac{36}{2}``: the last needs sympy). Scores them through `score_accuracy`'s
process pool and checks every score against the known label.

    python benchmarks/reward_throughput.py [--data ../shared/data/gsm8k/test.jsonl] [--per-problem 2]
        [--repeats 3] [--workers 1 2] [--out benchmarks/results/reward_throughput.json]

Writes every repeat's rate, their median, min and max per worker count to ``--out`` (JSON), so
the figure in docs/REWARDS.md can be reproduced with its spread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skywork_rl.records.atomic import write_atomic
from skywork_rl.rewards.accuracy import score_accuracy
from skywork_rl.rewards.pool import default_num_workers

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k" / "test.jsonl"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "reward_throughput.json"
_FILLER = [
    "Wait, let me re-read the problem to make sure I have the quantities right.",
    "Let me double-check this step by computing it another way.",
    "Hmm, that seems plausible, but I should verify the units.",
    "So far so good. Now the next part of the question.",
    "Actually, let me recount: the problem says each item separately.",
]


def _answer_forms(value: int, rng: random.Random) -> str:
    forms = [str(value), f"\\${value}", f"{value}.00", f"\\frac{{{2 * value}}}{{2}}", f"{value:,}"]
    return rng.choice(forms)


def build_completions(
    data: Path, per_problem: int, seed: int = 0
) -> tuple[list[str], list[str], list[float]]:
    """(completions, gold solutions, expected scores) from GSM8K rows."""
    rng = random.Random(seed)
    completions, solutions, expected = [], [], []
    for line in data.read_text().splitlines():
        row = json.loads(line)
        gold = int(float(row["answer"].split("####")[-1].strip().replace(",", "")))
        steps = re.sub(r"<<[^>]*>>", "", row["answer"].split("####")[0]).strip().splitlines()
        for k in range(per_problem):
            right = k % 2 == 0
            value = gold if right else gold + rng.choice([-10, -2, -1, 1, 3, 7, 100])
            thoughts = [f"Let me understand the problem. {row['question']}"]
            for attempt in range(3):  # solve, then re-check twice, as long-CoT models do
                if attempt:
                    thoughts.append("Let me verify the whole computation once more from the start.")
                for step in steps:
                    thoughts += [step, rng.choice(_FILLER)]
            thoughts.append(f"Therefore the result is {value}.")
            completions.append(
                "<think>\n" + "\n".join(thoughts) + "\n</think>\n"
                f"The answer is \\boxed{{{_answer_forms(value, rng)}}}."
            )
            solutions.append(row["answer"])
            expected.append(1.0 if right else 0.0)
    return completions, solutions, expected


def measure(
    completions: list[str], solutions: list[str], workers: int, repeats: int
) -> tuple[dict[str, Any], list[float]]:
    """Completions/s of each of ``repeats`` runs (after a warm-up that starts the pool), and scores."""
    start = time.perf_counter()
    scores = score_accuracy(completions[: workers * 4], solutions[: workers * 4], num_workers=workers)
    warmup_s = time.perf_counter() - start
    print(f"  pool of {workers} started and warmed in {warmup_s:.1f}s")
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        scores = score_accuracy(completions, solutions, num_workers=workers)
        rates.append(len(completions) / (time.perf_counter() - start))
    summary = {
        "workers": workers,
        "rates_per_s": [round(r, 1) for r in rates],
        "median_per_s": round(statistics.median(rates), 1),
        "min_per_s": round(min(rates), 1),
        "max_per_s": round(max(rates), 1),
        "warmup_s": round(warmup_s, 2),
    }
    return summary, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-problem", type=int, default=2, help="completions per GSM8K problem")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=None, help="worker counts to measure (default: 1 and all)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"GSM8K test file not found at {args.data}; pass --data")
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}")
    completions, solutions, expected = build_completions(args.data, args.per_problem)
    mean_chars = sum(map(len, completions)) / len(completions)
    print(f"{len(completions)} completions, mean {mean_chars:,.0f} chars, {sum(expected):.0f} right")
    all_cores = default_num_workers()
    load_before = os.getloadavg()
    runs = []
    for workers in sorted(set(args.workers or [1, all_cores])):
        summary, scores = measure(completions, solutions, workers, args.repeats)
        summary["scores_disagreeing_with_labels"] = sum(s != e for s, e in zip(scores, expected, strict=True))
        runs.append(summary)
        print(
            f"workers={workers}: {summary['median_per_s']:,.0f} completions/s median "
            f"(min {summary['min_per_s']:,.0f}, max {summary['max_per_s']:,.0f}, {args.repeats} repeats; "
            f"scores disagreeing with labels: {summary['scores_disagreeing_with_labels']})"
        )
    if len(runs) > 1:
        speedup = runs[-1]["median_per_s"] / runs[0]["median_per_s"]
        print(f"speed-up of {runs[-1]['workers']} workers over {runs[0]['workers']}: {speedup:.2f}x")
    result = {
        "benchmark": "reward_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "usable_cores": all_cores, "platform": platform.platform()},
        # 1-minute load average before and after: other jobs on the machine slow every rate down
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "python": platform.python_version(),
        "data": str(args.data),
        "completions": len(completions),
        "mean_chars": round(mean_chars, 1),
        "right": int(sum(expected)),
        "repeats": args.repeats,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
