import sys, torch, time
torch.set_num_threads(1)
from skywork_rl.models import load_model_and_processor
from skywork_rl.heldout import heldout_result
from datasets import load_from_disk
model, proc = load_model_and_processor(sys.argv[1])
data = sys.argv[2]
for split in ("train", "rl", "heldout"):
    rows = list(load_from_disk(f"{data}/{split}").select(range(48)).select_columns(["prompt","images","solution","source"]))
    t=time.time()
    r = heldout_result(model, proc, rows, max_new_tokens=32, temperature=0.0, num_samples=1)
    print(split, round(r.accuracy,3), round(time.time()-t,1), flush=True)
