"""Collect runs/*.json into miniature_halves.json (the numbers RESULTS.md's table quotes)."""
import json
from pathlib import Path

here = Path(__file__).resolve().parents[1]
out = {}
for f in sorted((here / "runs").glob("*.json")):
    d = json.loads(f.read_text())
    keep = lambda c: {s: {k: v for k, v in c[s].items() if k != "examples"} for s in ("train", "rl", "heldout")} | {"heldout_T1_avg5": c["heldout_T1_avg5"]}
    out[f.stem] = {"argv": d["argv"], **d["baselines"], "sft_wall_s": d["sft_wall_s"], "sft_cpu_s": d["sft_cpu_s"],
                   "start": keep(d["start_counts"]) if "start_counts" in d else "as H5",
                   "grpo_heldout_curve": d["grpo"]["curve"], "grpo_cpu_s": d["grpo"]["cpu_s"], "grpo_wall_s": d["grpo"]["wall_s"],
                   "informative_per_update": d["grpo"]["informative"], "after_grpo": keep(d["grpo_counts"])}
(here / "miniature_halves.json").write_text(json.dumps(out, indent=1))
print(list(out))
