"""How much learning signal each GRPO variant gets from the same number of generated rollouts.

Runs, on the tiny InternVL and the rendered synthetic problems, with one budget of generated rollouts:

* ``plain``: TRL's GRPO (`SSBGRPOTrainer` with `ssb_enabled: false`);
* ``ssb``: R1V2's Selective Sample Buffer (zero-advantage slots refilled from the buffer);
* ``dynamic_sampling``: DAPO-style dynamic sampling, defined below as the baseline: zero-std groups
  are dropped and more prompts are generated until the update is full of informative groups (or
  the budget runs out).

Writes ``ssb_efficiency.json`` ({"plain": {...}, "ssb": {...}, "dynamic_sampling": {...}, "timing":
{...}}) and ``ssb_efficiency.png`` into ``--out``. The reward is verifiable and cheap: 1 when the
completion contains the gold answer, so a random tiny model solves some rollouts of a group but not all.

Time per step is noisy on a shared machine, so ``--repeats N`` runs the variants N times,
interleaved (plain, ssb, ..., plain, ssb, ...), each from a fresh model, and ``timing`` holds every
repeat's wall and CPU seconds per step with their median and range (CPU time, summed over the
process's threads, moves less with other load). The other figures come from the first repeat.

    python benchmarks/ssb_efficiency.py --out outputs/benchmarks --repeats 5
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from skywork_rl.records.atomic import save_figure, write_atomic
from skywork_rl.trainers.grpo_rows import collate_rows, loss_mask, split_rows
from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

VARIANTS = ("plain", "ssb", "dynamic_sampling")
SSB_LOGGED = ("effective_token_ratio", "replay_age_mean", "buffer_size", "buffer_bytes")
# What SSB adds to a step: the generation hook (buffer draw and push, row copies) and the loss-path
# bookkeeping (behaviour log-probs for the buffer, the clipped-token count).
SSB_HOOKS = ("_apply_selective_sample_buffer", "_take_behaviour_logps", "_log_effective_tokens")


def contains_answer(completions: list, solution: list[str], **kwargs: Any) -> list[float]:
    """1.0 when the gold answer appears in the completion text."""
    return [
        float(gold in completion[0]["content"])
        for completion, gold in zip(completions, solution, strict=True)
    ]


class StopAtBudget(TrainerCallback):
    """Stops training once `trainer` has generated its `budget` of rollouts."""

    def __init__(self, trainer: Recording) -> None:
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.trainer.generated >= self.trainer.budget:
            control.should_training_stop = True
        return control


class Recording:
    """Mixin: counts generated rollouts and their reward, the informative samples of each update, and
    the CPU time spent in the buffer's own hooks (`SSB_HOOKS`, those the trainer has); training stops
    once `budget` rollouts are generated (`StopAtBudget`)."""

    def __init__(self, *args: Any, budget: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.add_callback(StopAtBudget(self))
        self.generated = 0
        self.reward_curve: list[tuple[int, float]] = []  # (rollouts generated so far, mean reward of a batch)
        self.informative_per_update: list[int] = []
        self.update_sizes: list[int] = []
        self.ssb_hook_cpu_s = 0.0
        for name in SSB_HOOKS:
            if hasattr(self, name):
                setattr(self, name, self._timed(getattr(self, name)))

    def _timed(self, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.ssb_hook_cpu_s += time.process_time() - started

        return timed

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # noqa: ANN001
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.generated += len(prompts)
        self.reward_curve.append((self.generated, float(torch.nanmean(rewards.sum(dim=1)))))
        return rewards

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.model.training:
            informative = (output["advantages"].abs() > self.args.ssb_advantage_threshold) & (
                loss_mask(output).sum(-1) > 0
            )
            self.informative_per_update.append(int(informative.sum()))
            self.update_sizes.append(informative.numel())
        return output


class DynamicSamplingGRPOTrainer(SSBGRPOTrainer):
    """DAPO's dynamic sampling as a baseline: keep only groups with non-zero reward std, sample more
    prompts until the generation batch is full of them (or the rollout budget is spent)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prompt_rng = random.Random(self.args.seed)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        size, group = len(inputs), self.num_generations
        kept: list[dict[str, Any]] = []
        while True:
            split = split_rows(super()._generate_and_score_completions(inputs))
            advantages = torch.stack([row["advantages"] for row in split.rows])
            for start in range(0, size, group):
                if (advantages[start : start + group].abs() > self.args.ssb_advantage_threshold).any():
                    kept.extend(split.rows[start : start + group])
            if len(kept) >= size or self.generated >= self.budget:
                break
            picks = [
                self.train_dataset[self._prompt_rng.randrange(len(self.train_dataset))]
                for _ in range(size // group)
            ]
            inputs = [dict(row) for row in picks for _ in range(group)]
        rows = (kept + split.rows)[:size]  # budget spent: fill the rest with the last (uninformative) rows
        output = collate_rows(
            rows, split, pad_token_id=self._tokenizer.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of
        )
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask(output).sum()).sum()
        return output


class RecordingGRPO(Recording, SSBGRPOTrainer):
    pass


class RecordingDynamicSampling(Recording, DynamicSamplingGRPOTrainer):
    pass


def run_variant(
    variant: str, model_dir: Path, dataset: Any, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    from skywork_rl.families.parts import load_model_and_processor

    torch.manual_seed(args.seed)
    model, processor = load_model_and_processor(str(model_dir))
    config = SkyworkGRPOConfig(
        output_dir=str(out / "runs" / variant),
        max_steps=args.rollouts // args.batch_size,
        per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        beta=0.0,
        loss_type="dapo",
        ssb_enabled=variant == "ssb",
        bf16=False,
        use_cpu=True,
        report_to=[],
        logging_steps=args.rollouts,  # the recorder keeps what the benchmark needs; spare the console
        save_strategy="no",
        seed=args.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer_class = RecordingDynamicSampling if variant == "dynamic_sampling" else RecordingGRPO
    trainer = trainer_class(
        model=model,
        reward_funcs=contains_answer,
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        budget=args.rollouts,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer.train()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    informative = sum(trainer.informative_per_update)
    final_log = next((h for h in reversed(trainer.state.log_history) if "ssb/effective_ratio" in h), {})
    curve = trainer.reward_curve
    tail = [reward for generated, reward in curve if generated > 0.75 * trainer.generated]
    return {
        "updates": trainer.state.global_step,
        "generated_rollouts": trainer.generated,
        "informative_samples": informative,
        "informative_per_update": informative / max(len(trainer.informative_per_update), 1),
        "effective_ratio": informative / max(sum(trainer.update_sizes), 1),
        "rollouts_per_informative_sample": trainer.generated / informative if informative else None,
        "final_reward": sum(tail) / len(tail) if tail else None,
        "sec_per_step": elapsed / max(trainer.state.global_step, 1),
        "cpu_sec_per_step": cpu / max(trainer.state.global_step, 1),
        "ssb_hook_cpu_sec_per_step": trainer.ssb_hook_cpu_s / max(trainer.state.global_step, 1),
        "wall_s": elapsed,
        # The trainer's own SSB metrics, averaged over the run (one log at its end).
        **{key: final_log.get(f"ssb/{key}") for key in SSB_LOGGED},
        "reward_curve": curve,
        "setup": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"},
    }


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    bars = [
        (axes[0, 0], "informative_per_update", "informative samples per update"),
        (axes[0, 1], "rollouts_per_informative_sample", "generated rollouts per informative sample"),
        (axes[1, 1], "sec_per_step", "wall time per step (s)"),
    ]
    for ax, key, title in bars:
        ax.bar(names, [results[n][key] or 0.0 for n in names], color=["tab:gray", "tab:blue", "tab:orange"])
        ax.set_title(title)
    ax = axes[1, 0]
    for name in names:
        curve = results[name]["reward_curve"]
        xs, ys = [g for g, _ in curve], [r for _, r in curve]
        window = max(len(ys) // 10, 1)
        smooth = [
            sum(ys[max(0, i - window + 1) : i + 1]) / len(ys[max(0, i - window + 1) : i + 1])
            for i in range(len(ys))
        ]
        ax.plot(xs, smooth, label=name)
    ax.set_title("reward vs generated rollouts")
    ax.set_xlabel("generated rollouts")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks"))
    parser.add_argument("--model", type=Path, default=None, help="tiny checkpoint (built in --out if absent)")
    parser.add_argument("--rollouts", type=int, default=1536, help="generated rollouts per variant")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=24)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--num-problems", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs per variant, for timing")
    args = parser.parse_args(argv)

    from skywork_rl.miniature.synthetic import build_dataset
    from skywork_rl.miniature.tiny import make_tiny_model

    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = args.model or args.out / "tiny-internvl"
    if not (Path(model_dir) / "config.json").exists():
        make_tiny_model("internvl", Path(model_dir), seed=args.seed)
    dataset = build_dataset(args.num_problems, seed=args.seed).select_columns(
        ["prompt", "images", "solution"]
    )
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in args.variants}
    for _ in range(args.repeats):  # interleaved, so load on a shared machine hits every variant alike
        for variant in args.variants:
            runs[variant].append(run_variant(variant, Path(model_dir), dataset, args, args.out))
    results: dict[str, Any] = {variant: repeats[0] for variant, repeats in runs.items()}
    plot(results, args.out / "ssb_efficiency.png")
    results["timing"] = timing(runs)
    write_atomic(args.out / "ssb_efficiency.json", json.dumps(results, indent=2))
    for name in args.variants:
        r, t = results[name], results["timing"][name]
        print(
            f"{name:17s} effective_ratio={r['effective_ratio']:.3f} "
            f"effective_token_ratio={r['effective_token_ratio']} replay_age_mean={r['replay_age_mean']} "
            f"rollouts/informative={r['rollouts_per_informative_sample']} final_reward={r['final_reward']:.3f} "
            f"updates={r['updates']} sec/step median={t['sec_per_step']['median']:.4f} "
            f"[{t['sec_per_step']['min']:.4f}, {t['sec_per_step']['max']:.4f}] "
            f"cpu_sec/step median={t['cpu_sec_per_step']['median']:.4f} "
            f"[{t['cpu_sec_per_step']['min']:.4f}, {t['cpu_sec_per_step']['max']:.4f}] "
            f"ssb_hook_cpu_sec/step median={t['ssb_hook_cpu_sec_per_step']['median']:.4f}"
        )
    if "ratio_to_plain" in results["timing"]:
        print("ratio of medians to plain:", json.dumps(results["timing"]["ratio_to_plain"]))
    return 0


def timing(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per variant: every repeat's wall and CPU seconds per step, their median and range; medians over plain's."""
    out: dict[str, Any] = {}
    for variant, repeats in runs.items():
        out[variant] = {}
        for key in ("sec_per_step", "cpu_sec_per_step", "ssb_hook_cpu_sec_per_step"):
            values = [r[key] for r in repeats]
            out[variant][key] = {
                "values": values,
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
    if "plain" in runs:
        out["ratio_to_plain"] = {
            variant: {
                key: out[variant][key]["median"] / out["plain"][key]["median"]
                for key in ("sec_per_step", "cpu_sec_per_step")
            }
            for variant in runs
            if variant != "plain"
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
