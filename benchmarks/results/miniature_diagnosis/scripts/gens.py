import sys, torch
torch.set_num_threads(1)
from skywork_rl.models import load_model_and_processor
from datasets import load_from_disk
from skywork_rl.heldout import heldout_result
import inspect, skywork_rl.heldout as h
model, proc = load_model_and_processor(sys.argv[1])
rows = list(load_from_disk(f"{sys.argv[2]}/heldout").select(range(12)))
r = heldout_result(model, proc, [{k:row[k] for k in ("prompt","images","solution","source")} for row in rows], max_new_tokens=32, temperature=0.0, num_samples=1)
print([f for f in dir(r) if not f.startswith('_')])
for row, c in zip(rows, getattr(r, 'completions', [None]*12)):
    print(repr(row["completion"])[-120:], "| got:", repr(c)[:160])
