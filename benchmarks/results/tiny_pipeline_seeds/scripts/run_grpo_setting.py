"""One-off: re-run the tiny pipeline from grpo on with a GRPO setting (argv: seed, name, JSON for grpo and
grpo-pool, JSON for grpo only), on the kept seed runs at 140 SFT steps; the runner skips the stages before grpo."""
import json, os, resource, subprocess, sys, time
from pathlib import Path
import yaml
seed = int(sys.argv[1]); name = sys.argv[2]; both = json.loads(sys.argv[3]); grpo_only = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
folder = Path(f"/work/seeds_runs/seed{seed}")
spec = yaml.safe_load((folder / "pipeline_sft140.yaml").read_text())
for e in spec["stages"]:
    if e["stage"] == "grpo":
        t = e.setdefault("overrides", {}).setdefault("training", {})
        t.update(both)
        if e["id"] == "grpo":
            t.update(grpo_only)
path = folder / f"pipeline_{name}.yaml"
path.write_text(yaml.safe_dump(spec, sort_keys=False))
t0 = time.time(); u = resource.getrusage(resource.RUSAGE_CHILDREN); load0 = os.getloadavg()[0]
code = subprocess.run([sys.executable, "-m", "skywork_rl.cli", "run", str(path), "--output-root", str(folder / "run"), "--quiet"]).returncode
u2 = resource.getrusage(resource.RUSAGE_CHILDREN)
rep = json.loads((folder / "run" / "pipeline_report.json").read_text())
h = rep["heldout_accuracy"]
r = {"seed": seed, "setting": name, "both": both, "grpo_only": grpo_only, "exit_code": code, "seconds": round(time.time() - t0, 1),
     "cpu_seconds": round(u2.ru_utime + u2.ru_stime - u.ru_utime - u.ru_stime, 1), "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
     "statuses": {s["id"]: s["status"] for s in rep["stages"]}, "heldout_accuracy": h, "grpo_minus_sft": round(h["grpo"] - h["sft"], 4)}
Path(f"/work/probe5/{name}_seed{seed}.json").write_text(json.dumps({"result": r, "report": rep}, indent=2))
print(json.dumps({k: r[k] for k in ("seed", "exit_code", "seconds", "cpu_seconds", "heldout_accuracy", "grpo_minus_sft")}), flush=True)
