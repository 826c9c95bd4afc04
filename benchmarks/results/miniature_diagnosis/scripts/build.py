import json, sys
from pathlib import Path
sys.path.insert(0, "/work/wt/mini23")
from skywork_rl.atomic import save_figure, write_atomic
OUT = Path("/work/wt/mini23/benchmarks/results/miniature_diagnosis")
parts = json.load(open("/tmp/m23/e1/parts_3085.json"))
extra = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else {}
extra_models = extra.pop("extra_models", {})
d = {n: json.load(open(f"/tmp/m23/e1/{n}.json")) for n in ("d1", "d2")}
common = {"task": "quadrant_color", "train_rows": 512, "rl_rows": 256, "heldout_rows": 96,
          "split_seeds": {"train": 1, "rl": 7, "heldout": 999}, "sft_batch": 8, "sft_lr": 3e-3,
          "sft_scheduler": "constant", "sft_seed": 0, "model": "tiny internvl (skywork_rl.tiny, seed 0)"}
result = {
    "date": "2026-12-07", "machine": "2 shared CPU cores, load average 8-13 (other helpers' jobs ran throughout)",
    "memorization_baseline": 0.3854, "chance_accuracy": 0.25, "setup": common,
    "greedy_protocol": "first 48 rows of each split, greedy, 32 new tokens; list_read_right: the trace's colour list equals the gold list; asked_quadrant_named: its 'The X is' names the asked quadrant; named_top_right: it names 'top right'",
    "heldout_protocol": "96 held-out rows, temperature 1.0, avg@5 (benchmarks/miniature.py heldout_accuracy)",
    "starts": {
        "E1_sft300_plain_trace": {"sft_steps": 300, "trace": "c1, c2, c3, c4. The <asked> is <answer>.",
            "sft_wall_s": 632, "heldout_T1_avg5": 0.3396, "greedy": parts["/tmp/m23/e1/start"]},
        "E2_sft300_labelled_trace": {"sft_steps": 300, "max_completion_length": 40,
            "trace": "top left c1, top right c2, bottom left c3, bottom right c4. The <asked> is <answer>.",
            "sft_wall_s": 733, "heldout_T1_avg5": 0.2792,
            "greedy": {"train": {"accuracy": 0.333}, "rl": {"accuracy": 0.438}, "heldout": {"accuracy": 0.208}}},
    },
    "grpo_from_E1": {
        "D1_lr5e-4_T0.7_8x4": {"learning_rate": 5e-4, "warmup_steps": 10, "temperature": 0.7, "prompts_per_step": 8,
            "num_generations": 4, "rollouts": 1920, "seed": 0, "heldout_curve_T1_avg5": d["d1"]["curve"],
            "informative_share_per_update": [round(s, 3) for _, s in d["d1"]["informative"]],
            "updates": d["d1"]["updates"], "cpu_s": round(d["d1"]["cpu_s"], 1), "greedy_after": parts["/tmp/m23/e1/models/d1"]},
        "D2_lr1e-3_T1.0_4x8": {"learning_rate": 1e-3, "warmup_steps": 10, "temperature": 1.0, "prompts_per_step": 4,
            "num_generations": 8, "rollouts": 1920, "seed": 0, "heldout_curve_T1_avg5": d["d2"]["curve"],
            "informative_share_per_update": [round(s, 3) for _, s in d["d2"]["informative"]],
            "updates": d["d2"]["updates"], "cpu_s": round(d["d2"]["cpu_s"], 1), "greedy_after": parts["/tmp/m23/e1/models/d2"]},
    },
    **extra,
}
write_atomic(OUT / "miniature_diagnosis.json", json.dumps(result, indent=2))
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
models = [("start (SFT 300)", parts["/tmp/m23/e1/start"]), ("GRPO D1", parts["/tmp/m23/e1/models/d1"]), ("GRPO D2", parts["/tmp/m23/e1/models/d2"])]
for name, g in extra_models.items():
    models.append((name, g))
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
for ax, split in zip(axes, ("train", "rl", "heldout")):
    keys = ("list_read_right", "asked_quadrant_named", "accuracy")
    for i, key in enumerate(keys):
        ax.bar([j + 0.27 * i for j in range(len(models))], [m[split][key] for _, m in models], 0.27, label=key)
    ax.set_xticks([j + 0.27 for j in range(len(models))], [n for n, _ in models], fontsize=8)
    ax.set_title(f"{split} (greedy, 48 rows)")
    if split == "heldout":
        ax.axhline(result["memorization_baseline"], color="k", ls=":", lw=1, label="memorisation")
axes[0].set_ylim(0, 1.05); axes[-1].legend(fontsize=7)
fig.tight_layout(); save_figure(fig, OUT / "miniature_diagnosis.png", dpi=100); plt.close(fig)
print("ok")
