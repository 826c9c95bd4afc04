"""`skywork-rl select`: rank RL checkpoints by critical-token entropy (R1V3), and by accuracy when known.

R1V3 (arXiv 2507.06167, "Critical Token Entropy Indicates Reasoning Ability") picks checkpoints
whose critical reasoning tokens ("wait", "alternatively", ...) are generated with high entropy:
low entropy there means the model imitates reasoning rather than deciding at the fork. Rule here:
- without accuracies: the checkpoint with the highest critical-token entropy;
- with accuracies (``<ckpt>/eval/report.json`` or ``--eval-report CKPT=PATH``): checkpoints whose
  entropy is below ``--entropy-ratio`` x the best entropy are set aside as imitating, and the
  most accurate of the rest is chosen (ties: higher entropy).
Writes ``selection.json`` (the choice and why), ``checkpoints.json`` (the table) and
``critical_entropy.png``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser
from tqdm.auto import tqdm

from skywork_rl.callbacks.entropy import DEFAULT_CRITICAL_WORDS, CriticalEntropy, rollout_critical_entropy
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.errors import SkyworkError
from skywork_rl.families.capabilities import check_checkpoint_family
from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.records.atomic import save_figure, write_atomic


class SelectionError(SkyworkError):
    """The candidates cannot be ranked as asked; the message says why and what to change."""


@dataclass
class CheckpointScore:
    """One checkpoint's row of the table."""

    checkpoint: str
    step: int
    entropy: float | None
    critical_tokens: int
    accuracy: float | None = None
    eligible: bool = True


def checkpoint_step(path: str, fallback: int) -> int:
    """``.../checkpoint-500`` -> 500 (the plot's order); else the position on the command line."""
    match = re.search(r"(\d+)\D*$", Path(path).name)
    return int(match.group(1)) if match else fallback


class NoCriticalTokens(SkyworkError, ValueError):
    """No candidate generated a critical word on the probe set, so entropy cannot rank them."""


def rank_checkpoints(scores: Sequence[CheckpointScore], entropy_ratio: float = 0.9) -> list[CheckpointScore]:
    """Best first, by the rule in the module docstring; checkpoints without critical tokens go last."""
    measured = [s for s in scores if s.entropy is not None]
    if not measured:
        raise NoCriticalTokens(
            "select: no checkpoint generated any critical token on the probe set; use a larger probe set, "
            "more --num-generations or --max-new-tokens, or check --words"
        )
    best_entropy = max(s.entropy for s in measured)  # type: ignore[type-var]
    use_accuracy = all(s.accuracy is not None for s in measured)
    for s in scores:
        s.eligible = s.entropy is not None and (not use_accuracy or s.entropy >= entropy_ratio * best_entropy)

    def key(s: CheckpointScore) -> tuple[Any, ...]:
        entropy = s.entropy if s.entropy is not None else float("-inf")
        if use_accuracy:
            return (s.eligible, s.accuracy or 0.0, entropy)
        return (s.eligible, entropy)

    return sorted(scores, key=key, reverse=True)


def rank_by_accuracy(scores: Sequence[CheckpointScore]) -> list[CheckpointScore]:
    """Best first by eval accuracy alone (ties: the later step), for models that never say a critical word."""
    missing = [s.checkpoint for s in scores if s.accuracy is None]
    if missing:
        raise SelectionError(
            f"select: ranking by accuracy needs an eval report for every candidate; none for {', '.join(missing)} "
            "(looked for <checkpoint>/eval/report.json and the given eval reports): run `skywork-rl eval` on them"
        )
    return sorted(scores, key=lambda s: (s.accuracy, s.step), reverse=True)


def rollout_sampling(options: Any) -> SamplingParams:
    """The probe rollouts' sampling named by `options`: the `select` command's arguments or the
    stage's `SelectOptions` (both carry max_new_tokens, temperature, top_p and seed)."""
    return SamplingParams(
        max_new_tokens=options.max_new_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        seed=options.seed,
    )


def measure_checkpoint(
    checkpoint: str,
    rows: Sequence[dict[str, Any]],
    *,
    sampling: SamplingParams,
    words: Sequence[str],
    num_generations: int,
    batch_size: int,
    dtype: str = "auto",
    device_map: Any = None,
    trust_remote_code: bool = False,
) -> tuple[CriticalEntropy, list[str]]:
    """Load `checkpoint`, roll it out on `rows` and measure its critical-token entropy (the model is
    released before returning, so candidates are measured one at a time in the memory of one)."""
    import gc

    from skywork_rl.families.parts import load_model_and_processor  # defers torch

    check_checkpoint_family(
        checkpoint, rows, where=f"select {checkpoint}", trust_remote_code=trust_remote_code
    )
    model, processor = load_model_and_processor(
        checkpoint, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code
    )
    try:
        return rollout_critical_entropy(
            model,
            processor,
            rows,
            sampling=sampling,
            words=words,
            num_generations=num_generations,
            batch_size=batch_size,
            progress=f"{Path(checkpoint).name}: probes",
        )
    finally:
        del model
        gc.collect()
        _empty_accelerator_cache()


def _empty_accelerator_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def read_accuracy(report: Path) -> float:
    """Average accuracy of a `skywork-rl eval` report.json (or a scores file with ``accuracy``)."""
    data = json.loads(report.read_text())
    if "average_accuracy" in data:
        return float(data["average_accuracy"])
    if "accuracy" in data:
        return float(data["accuracy"])
    raise ValueError(f"{report}: no 'average_accuracy' or 'accuracy' key; is it a `skywork-rl eval` report?")


def eval_reports(pairs: Sequence[str], checkpoints: Sequence[str]) -> dict[str, Path]:
    """``--eval-report CKPT=PATH`` pairs as ``{checkpoint as given in --checkpoints: report}``.

    CKPT is matched by resolved path (``ckpt/checkpoint-2/`` names ``ckpt/checkpoint-2``); a pair
    without ``=``, a CKPT not among ``checkpoints`` or a missing report is an error, not ignored."""
    by_resolved = {Path(c).resolve(): c for c in checkpoints}
    reports: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(
                f"select: --eval-report {pair!r}: expected CKPT=PATH (a checkpoint, '=', its report.json)"
            )
        checkpoint = by_resolved.get(Path(name).resolve())
        if checkpoint is None:
            raise SystemExit(
                f"select: --eval-report {pair!r}: {name} is not one of --checkpoints ({', '.join(checkpoints)})"
            )
        if not Path(path).is_file():
            raise SystemExit(f"select: --eval-report {pair!r}: no such file {path}")
        reports[checkpoint] = Path(path)
    return reports


def partial_accuracy_warning(scores: Sequence[CheckpointScore]) -> str | None:
    """A warning when some measured checkpoints have an accuracy and others not: the rule then falls
    back to entropy alone for all of them."""
    measured = [s for s in scores if s.entropy is not None]
    missing = [s.checkpoint for s in measured if s.accuracy is None]
    if missing and len(missing) < len(measured):
        return (
            f"select: warning: no eval report for {', '.join(missing)} (looked for --eval-report, then "
            "<ckpt>/eval/report.json), so accuracy is ignored for every checkpoint and entropy alone decides"
        )
    return None


def checkpoint_labels(scores: Sequence[CheckpointScore]) -> list[str]:
    """Each checkpoint's folder name (``checkpoint-500``), or its path as given when two share a name."""
    names = [Path(s.checkpoint).name for s in scores]
    return names if len(set(names)) == len(names) else [s.checkpoint for s in scores]


def plot_figure(scores: Sequence[CheckpointScore], chosen: str) -> Any:
    """Entropy per checkpoint, the x axis naming each one (placed by step when the steps are
    distinct, else in step order), accuracy on a second axis when known; the choice is marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted((s for s in scores if s.entropy is not None), key=lambda s: s.step)
    steps = [s.step for s in ordered]
    xs = steps if len(set(steps)) == len(steps) else list(range(len(ordered)))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, [s.entropy for s in ordered], "o-", color="tab:blue", label="critical-token entropy")
    ax.set_xticks(xs, checkpoint_labels(ordered), rotation=30, ha="right")
    ax.set_xlabel("checkpoint")
    ax.set_ylabel("mean entropy at critical tokens (nats)", color="tab:blue")
    for x, s in zip(xs, ordered, strict=True):
        if s.checkpoint == chosen:
            ax.axvline(x, color="tab:green", linestyle="--", label=f"chosen: {Path(chosen).name}")
    known = [(x, s.accuracy) for x, s in zip(xs, ordered, strict=True) if s.accuracy is not None]
    if known:
        twin = ax.twinx()
        twin.plot([x for x, _ in known], [100 * a for _, a in known], "s--", color="tab:orange")
        twin.set_ylabel("eval accuracy (%)", color="tab:orange")
    ax.legend(loc="best")
    ax.set_title("Checkpoint selection by critical-token entropy (R1V3)")
    fig.tight_layout()
    return fig


def plot(scores: Sequence[CheckpointScore], chosen: str, path: Path) -> None:
    """Write `plot_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = plot_figure(scores, chosen)
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def selection_rule(ranked: Sequence[CheckpointScore], entropy_ratio: float) -> str:
    """The rule `rank_checkpoints` applied to `ranked`, in words."""
    if all(s.accuracy is not None for s in ranked if s.entropy is not None):
        return f"most accurate among checkpoints with entropy >= {entropy_ratio} x best"
    return "highest critical-token entropy"


def write_selection_files(
    ranked: Sequence[CheckpointScore], selection: dict[str, Any], output_dir: Path
) -> None:
    """checkpoints.json and the plot (when entropies were measured), then selection.json, each atomically:
    selection.json last, so a folder that has it has the rest."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / "checkpoints.json", json.dumps([asdict(s) for s in ranked], indent=2))
    if any(s.entropy is not None for s in ranked):
        plot(ranked, selection["chosen"], output_dir / "critical_entropy.png")
    write_atomic(output_dir / "selection.json", json.dumps(selection, indent=2))


def write_selection(
    scores: list[CheckpointScore], output_dir: Path, entropy_ratio: float, words: Sequence[str]
) -> dict[str, Any]:
    """Rank, then write selection.json, checkpoints.json and the plot; returns the selection."""
    ranked = rank_checkpoints(scores, entropy_ratio)
    selection = {
        "chosen": ranked[0].checkpoint,
        "rule": selection_rule(ranked, entropy_ratio),
        "critical_words": list(words),
        "ranking": [s.checkpoint for s in ranked],
    }
    write_selection_files(ranked, selection, output_dir)
    return selection


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="skywork-rl select", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoints", type=str, nargs="+", required=True, help="checkpoint folders (space-separated)"
    )
    parser.add_argument(
        "--probe-data", type=str, required=True, help="canonical dataset (folder, file or hub id) of prompts"
    )
    parser.add_argument("--output-dir", type=str, default="selection")
    parser.add_argument(
        "--words", type=str, nargs="+", default=list(DEFAULT_CRITICAL_WORDS), help="critical words"
    )
    parser.add_argument("--limit", type=int, default=64, help="probe prompts used")
    parser.add_argument("--num-generations", type=int, default=4, help="rollouts per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=4096)
    parser.add_argument(
        "--temperature", type=float, default=1.0, help="rollout sampling (entropy uses raw logits)"
    )
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--entropy-ratio", type=float, default=0.9, help="with accuracies: entropy floor vs the best"
    )
    parser.add_argument(
        "--eval-report",
        type=str,
        nargs="+",
        default=[],
        help="CKPT=report.json (default <ckpt>/eval/report.json)",
    )
    return parser


def main(argv: list[str]) -> int:
    """Entry point for `skywork-rl select ...`."""
    args = build_parser().parse_args(argv)

    reports = eval_reports(args.eval_report, args.checkpoints)
    probe = load_stage_dataset(args.probe_data, split="train", key="--probe-data")
    rows = [probe[i] for i in range(min(args.limit, len(probe)))]
    scores: list[CheckpointScore] = []
    missing = [c for c in args.checkpoints if not Path(c).is_dir()]
    if missing:  # before hours of probing the others
        raise SystemExit(f"select: --checkpoints {missing[0]}: no such folder")
    for index, checkpoint in enumerate(tqdm(args.checkpoints, desc="select", unit="checkpoint")):
        result, _ = measure_checkpoint(
            checkpoint,
            rows,
            sampling=rollout_sampling(args),
            words=args.words,
            num_generations=args.num_generations,
            batch_size=args.batch_size,
        )
        report = Path(reports.get(checkpoint, Path(checkpoint) / "eval" / "report.json"))
        accuracy = read_accuracy(report) if report.is_file() else None
        scores.append(
            CheckpointScore(
                checkpoint, checkpoint_step(checkpoint, index), result.mean, result.count, accuracy
            )
        )
        tqdm.write(
            f"{checkpoint}: entropy {result.mean} over {result.count} critical tokens, accuracy {accuracy}"
        )
    warning = partial_accuracy_warning(scores)
    if warning:
        print(warning, file=sys.stderr)
    selection = write_selection(scores, Path(args.output_dir), args.entropy_ratio, args.words)
    print(f"chosen: {selection['chosen']} ({selection['rule']})")
    return 0
