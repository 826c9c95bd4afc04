"""One-off: the five re-runs of run_grpo_setting.py at lr 5e-4, 10 % warmup, 120 GRPO updates (the
recipe's values from this record on) as one record, shaped like tiny_pipeline_seeds.py's JSON, with the
training section each training stage ran with (tiny_pipeline_seeds.training_sections)."""
import json, sys
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import tiny_pipeline_seeds as script
NAME = "lr5e-4w_120"
out = Path("/work/main/benchmarks/results/tiny_pipeline_seeds/grpo120_warmup")
out.mkdir(parents=True, exist_ok=True)
sections = json.loads(Path(f"/work/probe5/{NAME}_sections.json").read_text())  # read from the kept runs right after the five re-runs
runs = []
for seed in range(5):
    rec = json.loads(Path(f"/work/probe5/{NAME}_seed{seed}.json").read_text())
    r = rec["result"]
    runs.append({"seed": seed, "status": "ran" if r["exit_code"] == 0 else "failed", "exit_code": r["exit_code"],
                 "seconds": r["seconds"], "cpu_seconds": r["cpu_seconds"], "load_before": r["load_before"], "load_after": r["load_after"],
                 "stage_statuses": r["statuses"], "heldout_accuracy": r["heldout_accuracy"], "grpo_minus_sft": r["grpo_minus_sft"],
                 "training": sections[str(seed)]})
    (out / f"seed{seed}_pipeline_report.json").write_text(json.dumps(rec["report"], indent=2))
record = {
    "date": "2026-12-07", "machine": "2 CPU cores",
    "command": f"run_grpo_setting.py SEED {NAME} on the kept runs of tiny_pipeline_seeds.py --keep-runs at 140 SFT steps (grpo and every stage after it re-run; the stages before it skipped as unchanged)",
    "varied": "training.seed of the training stages; grpo and grpo-pool: learning_rate 5e-4, warmup_steps 0.1, lr_scheduler_type constant_with_warmup; grpo: max_steps 120",
    "runs": runs, "grpo_minus_sft": script.summary(runs)}
(out / "tiny_pipeline_seeds.json").write_text(json.dumps(record, indent=2))
print(json.dumps(record["grpo_minus_sft"]), [r["grpo_minus_sft"] for r in runs])

# Every GRPO setting tried on the same kept runs (SFT 140), the shipped one included: per seed, the
# held-out accuracy after each stage, GRPO - SFT, wall and CPU seconds, load.
tried = {}
for name in ("lr1e-3w_80", "lr5e-4w_80", "lr5e-4w_120"):
    rows = [json.loads(p.read_text())["result"] for p in sorted(Path("/work/probe5").glob(f"{name}_seed*.json"))]
    tried[name] = {"grpo_and_grpo_pool": rows[0]["both"], "grpo_only": rows[0]["grpo_only"], "runs": rows,
                   "grpo_minus_sft": script.summary([{**r, "status": "ran" if r["exit_code"] == 0 else "failed"} for r in rows])}
(out / "settings_tried.json").write_text(json.dumps(tried, indent=2))
print({k: v["grpo_minus_sft"] for k, v in tried.items()})
