"""One-off (issue 23 point 1, after the diagnosis): a start on --task, its diagnosis counts, then
optionally plain GRPO from it and the counts again. Writes --out/<name>.json.

    python halves.py --out /tmp/h23/X --name X --task half_color --train-rows 512 --sft-steps 300 \
        --max-completion-length 40 [--grpo-rollouts 1920 --eval-every 20]
"""
import argparse, json, re, sys, time
from pathlib import Path

sys.path.insert(0, "benchmarks")
import torch

torch.set_num_threads(1)
import miniature, ssb_learning
from skywork_rl.families.parts import load_model_and_processor
from skywork_rl.miniature.heldout import heldout_result

p = argparse.ArgumentParser(); miniature.add_arguments(p)
p.add_argument("--out", type=Path); p.add_argument("--name"); p.add_argument("--start", type=Path)
p.add_argument("--sft-lr", default="3e-3"); p.add_argument("--grpo-rollouts", type=int, default=0)
p.add_argument("--eval-every", type=int, default=20); p.add_argument("--skip-start-counts", action="store_true")
args = p.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
PAT = re.compile(r"<think>\n(?:(.*?): )?(.*?)\. The (.*?) is (\w+)")
BOX = re.compile(r"boxed\{(\w+)\}")


def counts(path):
    model, proc = load_model_and_processor(str(path))
    res = {}
    for split in ("train", "rl", "heldout"):
        ds = miniature.load_split(args, split).select(range(48))
        rows = list(ds.select_columns(["prompt", "images", "solution", "source"]))
        r = heldout_result(model, proc, rows, max_new_tokens=args.max_completion_length, temperature=0.0, num_samples=1)
        read = sel = restated = picked = agree = 0
        named = {}
        for row, c in zip(ds, r.completions):
            g = PAT.search(row["completion"][-1]["content"][0]["text"]); m = PAT.search(c)
            read += bool(m) and m.group(2) == g.group(2)
            sel += bool(m) and m.group(3) == g.group(3)
            restated += bool(m) and m.group(1) == g.group(3)
            picked += bool(m) and m.group(4) == row["solution"]  # the trace's selected colour is the answer
            b = BOX.search(c)
            agree += bool(m) and bool(b) and b.group(1) == m.group(4)  # the boxed answer copies it
            if m:
                named[m.group(3)] = named.get(m.group(3), 0) + 1
        n = len(rows)
        res[split] = {"greedy_accuracy": round(r.accuracy, 3), "colour_list_right": round(read / n, 3),
                      "asked_named": round(sel / n, 3), "asked_restated": round(restated / n, 3),
                      "trace_selects_answer": round(picked / n, 3), "boxed_copies_trace": round(agree / n, 3), "named": named,
                      "examples": [c[:80] for c in r.completions[:3]]}
        print(path.name, split, res[split], flush=True)
    res["heldout_T1_avg5"] = round(miniature.heldout_accuracy(model, proc, miniature.heldout_rows(args), args), 4)
    print(path.name, "heldout T1 avg@5", res["heldout_T1_avg5"], flush=True)
    return res


out = {"argv": sys.argv[1:]}
t0 = time.time()
t, c = time.time(), time.process_time()
miniature.save_splits(args)
out["baselines"] = miniature.baselines(args); print(out["baselines"], flush=True)
if args.start is None:
    if args.sft_lr != "3e-3":  # the benchmark's build_start hard-codes 3e-3; patch its argv for this run
        import skywork_rl.stages.base as base
        orig = base.parse_stage_config
        base.parse_stage_config = lambda cls, argv: orig(cls, [a if not a.startswith("--training.learning_rate=") else f"--training.learning_rate={args.sft_lr}" for a in argv])
    start = miniature.build_start(args)
else:
    start = args.start
out["start"] = str(start); out["sft_wall_s"] = round(time.time() - t); out["sft_cpu_s"] = round(time.process_time() - c)
print("sft wall", out["sft_wall_s"], "cpu", out["sft_cpu_s"], flush=True)
if not args.skip_start_counts:
    out["start_counts"] = counts(Path(start))
if args.grpo_rollouts:
    save = args.out / "models" / args.name
    t, c = time.time(), time.process_time()
    run = ssb_learning.run_one(ssb_learning.make_job(args, Path(start), "plain", args.first_seed, rollouts=args.grpo_rollouts, eval_every=args.eval_every, name=args.name, save_to=save))
    out["grpo"] = {"curve": run["curve"], "informative": [round(s, 2) for _, s in run["informative"]], "cpu_s": round(run["cpu_s"]), "wall_s": round(time.time() - t)}
    print("grpo", out["grpo"], flush=True)
    out["grpo_counts"] = counts(save)
out["total_wall_s"] = round(time.time() - t0)
(args.out / f"{args.name}.json").write_text(json.dumps(out, indent=1))
