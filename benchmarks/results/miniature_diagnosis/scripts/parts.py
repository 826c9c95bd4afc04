"""Per model: greedy on 48 rows of each split; share of rows whose colour list is read right (perception),
whose 'The X is' names the asked quadrant (selection), and whose boxed answer is right."""
import sys, re, json, torch
torch.set_num_threads(1)
from skywork_rl.models import load_model_and_processor
from skywork_rl.heldout import heldout_result
from datasets import load_from_disk
out = {}
for path in sys.argv[2:]:
    model, proc = load_model_and_processor(path)
    res = {}
    for split in ("train", "rl", "heldout"):
        ds = load_from_disk(f"{sys.argv[1]}/{split}").select(range(48))
        rows = list(ds.select_columns(["prompt", "images", "solution", "source"]))
        r = heldout_result(model, proc, rows, max_new_tokens=32, temperature=0.0, num_samples=1)
        read = sel = named_top_right = 0
        for row, c in zip(ds, r.completions):
            gold = row["completion"][-1]["content"][0]["text"]
            g = re.search(r"<think>\n(.*?)\. The (.*?) is", gold); m = re.search(r"<think>\n(.*?)\. The (.*?) is", c)
            read += bool(m) and m.group(1) == g.group(1)
            sel += bool(m) and m.group(2) == g.group(2)
            named_top_right += bool(m) and m.group(2) == "top right"
        n = len(rows)
        res[split] = {"accuracy": round(r.accuracy, 3), "list_read_right": round(read / n, 3),
                      "asked_quadrant_named": round(sel / n, 3), "named_top_right": round(named_top_right / n, 3)}
        print(path, split, res[split], flush=True)
    out[path] = res
json.dump(out, open(sys.argv[1] + "/../parts_" + str(abs(hash(tuple(sys.argv[2:]))) % 10000) + ".json", "w"), indent=1)
