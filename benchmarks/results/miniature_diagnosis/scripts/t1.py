import sys, argparse
from pathlib import Path
sys.path.insert(0, "benchmarks")
import torch; torch.set_num_threads(1)
import miniature
from skywork_rl.models import load_model_and_processor
p = argparse.ArgumentParser(); miniature.add_arguments(p); p.add_argument("--out", type=Path); p.add_argument("--model")
a = p.parse_args(sys.argv[1:])
m, pr = load_model_and_processor(a.model)
print("T1avg5", miniature.heldout_accuracy(m, pr, miniature.heldout_rows(a), a), flush=True)
