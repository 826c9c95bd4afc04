import sys, time, argparse, json
from pathlib import Path
sys.path.insert(0, "benchmarks")
import torch
torch.set_num_threads(1)
import miniature
p = argparse.ArgumentParser(); miniature.add_arguments(p); p.add_argument("--out", type=Path)
args = p.parse_args(sys.argv[1:])
args.out.mkdir(parents=True, exist_ok=True)
t = time.time()
miniature.save_splits(args)
print("baselines", miniature.baselines(args), flush=True)
start = miniature.build_start(args)
print("sft wall", round(time.time() - t), flush=True)
from skywork_rl.models import load_model_and_processor
from skywork_rl.heldout import heldout_result
model, proc = load_model_and_processor(str(start))
for split in ("train", "rl", "heldout"):
    rows = list(miniature.load_split(args, split).select(range(48)).select_columns(["prompt","images","solution","source"]))
    r = heldout_result(model, proc, rows, max_new_tokens=args.max_completion_length, temperature=0.0, num_samples=1)
    print("greedy", split, round(r.accuracy, 3), flush=True)
print("heldout T1 avg@5", miniature.heldout_accuracy(model, proc, miniature.heldout_rows(args), args), flush=True)
