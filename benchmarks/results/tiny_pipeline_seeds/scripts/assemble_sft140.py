"""One-off: the five SFT-140 seed runs (run_sft_steps.py) as one record, shaped like tiny_pipeline_seeds.py's JSON."""
import json, sys
from pathlib import Path
sys.path.insert(0, "/work/main/benchmarks")
import tiny_pipeline_seeds as script
out = Path("/work/main/benchmarks/results/tiny_pipeline_seeds/sft140")
out.mkdir(parents=True, exist_ok=True)
runs = []
for seed in range(5):
    rec = json.loads(Path(f"/work/probe4/sft140_seed{seed}.json").read_text())
    r = rec["result"]
    runs.append({"seed": seed, "status": "ran" if r["exit_code"] == 0 else "failed", "exit_code": r["exit_code"],
                 "seconds": r["seconds"], "cpu_seconds": r["cpu_seconds"], "load_before": r["load_before"],
                 "stage_statuses": r["statuses"], "heldout_accuracy": r["heldout_accuracy"], "grpo_minus_sft": r["grpo_minus_sft"]})
    (out / f"seed{seed}_pipeline_report.json").write_text(json.dumps(rec["report"], indent=2))
record = {
    "date": "2026-12-07", "machine": "2 CPU cores",
    "command": "run_sft_steps.py SEED 140 on the kept runs of tiny_pipeline_seeds.py --keep-runs (sft and every stage after it re-run; the stages before it skipped as unchanged)",
    "varied": "training.seed of the training stages; sft training.max_steps 140 (the recipe's value from this record on)",
    "runs": runs, "grpo_minus_sft": script.summary(runs)}
(out / "tiny_pipeline_seeds.json").write_text(json.dumps(record, indent=2))
print(json.dumps(record["grpo_minus_sft"]), [r["grpo_minus_sft"] for r in runs])
