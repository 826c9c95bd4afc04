import sys, json, argparse, time
from pathlib import Path
sys.path.insert(0, "benchmarks")
import torch
torch.set_num_threads(1)
import miniature, ssb_learning
p = argparse.ArgumentParser(); miniature.add_arguments(p)
p.add_argument("--out", type=Path); p.add_argument("--name"); p.add_argument("--rollouts", type=int); p.add_argument("--eval-every", type=int)
args = p.parse_args(sys.argv[1:])
start = args.out / "start"
save = args.out / "models" / args.name
t = time.time()
run = ssb_learning.run_one(ssb_learning.make_job(args, start, "plain", args.first_seed, rollouts=args.rollouts, eval_every=args.eval_every, name=args.name, save_to=save))
print("curve", run["curve"], "informative", [round(s, 2) for _, s in run["informative"]], "wall", round(time.time() - t), flush=True)
from skywork_rl.models import load_model_and_processor
from skywork_rl.heldout import heldout_result
model, proc = load_model_and_processor(str(save))
for split in ("train", "rl", "heldout"):
    rows = list(miniature.load_split(args, split).select(range(48)).select_columns(["prompt","images","solution","source"]))
    r = heldout_result(model, proc, rows, max_new_tokens=args.max_completion_length, temperature=0.0, num_samples=1)
    print("greedy", split, round(r.accuracy, 3), flush=True)
    if split == "rl":
        print([c[:90] for c in r.completions[:6]], flush=True)
json.dump(run, open(args.out / f"{args.name}.json", "w"), default=str)
