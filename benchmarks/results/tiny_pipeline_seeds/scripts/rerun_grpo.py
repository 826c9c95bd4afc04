"""One-off: re-run the tiny pipeline's GRPO and what follows at lr 5e-4 with 10 % warmup, on the kept
seed runs of benchmarks/tiny_pipeline_seeds.py (earlier stages unchanged, so the runner skips them)."""
import json, os, resource, subprocess, sys, time
from pathlib import Path
import yaml
SETTING = {"learning_rate": 5.0e-4, "warmup_steps": 0.1, "lr_scheduler_type": "constant_with_warmup"}
out = []
for seed in range(5):
    folder = Path(f"/work/seeds_runs/seed{seed}")
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
    for e in spec["stages"]:
        if e["stage"] == "grpo":
            e.setdefault("overrides", {}).setdefault("training", {}).update(SETTING)
    path = folder / "pipeline_lr5e-4.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    load0 = os.getloadavg()[0]; t0 = time.time(); u = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = subprocess.run([sys.executable, "-m", "skywork_rl.cli", "run", str(path), "--output-root", str(folder / "run"), "--quiet"]).returncode
    u2 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rep = json.loads((folder / "run" / "pipeline_report.json").read_text())
    h = rep["heldout_accuracy"]
    r = {"seed": seed, "exit_code": code, "seconds": round(time.time() - t0, 1), "cpu_seconds": round(u2.ru_utime + u2.ru_stime - u.ru_utime - u.ru_stime, 1),
         "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
         "statuses": {s["id"]: s["status"] for s in rep["stages"]}, "heldout_accuracy": h, "grpo_minus_sft": round(h["grpo"] - h["sft"], 4)}
    out.append(r)
    (folder / "report_lr5e-4.json").write_text(json.dumps(rep, indent=2))
    Path("/work/seeds_lr/results.json").write_text(json.dumps({"setting": SETTING, "runs": out}, indent=2))
    print(json.dumps({k: r[k] for k in ("seed", "exit_code", "seconds", "grpo_minus_sft")}), flush=True)
