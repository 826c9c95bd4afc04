"""Which colours do the tiny pipeline's SFT / GRPO models answer on held-out (greedy and T 1.0)? seed 0 vs 4."""
import collections, json, re, sys
import torch
from datasets import load_from_disk
from skywork_rl.families.parts import load_model_and_processor
from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.miniature.heldout import heldout_result
torch.set_num_threads(1)
out = {}
for seed in (0, 1, 4):
    run = f"/work/seeds_runs/seed{seed}/run"
    rows = list(load_from_disk(f"{run}/heldout"))
    gold = collections.Counter(r["solution"] for r in rows)
    out[f"seed{seed}/gold"] = dict(gold)
    for stage in ("sft",):
        model, proc = load_model_and_processor(f"{run}/{stage}")
        for name, sp, k in (("greedy", SamplingParams(max_new_tokens=32, temperature=0.0, seed=0), 1),
                            ("T1", SamplingParams(max_new_tokens=32, temperature=1.0, seed=0), 5)):
            res = heldout_result(model, proc, rows, sampling=sp, num_samples=k)
            ans = collections.Counter((re.findall(r"\\boxed\{([^}]*)\}", c) or ["<none>"])[-1] for c in res.completions)
            out[f"seed{seed}/{stage}/{name}"] = {"accuracy": round(res.accuracy, 3), "answers": dict(ans.most_common()), "example": res.completions[0]}
        print(json.dumps({k: v for k, v in out.items() if k.startswith(f"seed{seed}")}), flush=True)
json.dump(out, open("/work/probe4/answers.json", "w"), indent=1)
