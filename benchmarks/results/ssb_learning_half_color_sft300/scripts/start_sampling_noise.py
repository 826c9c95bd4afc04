"""The start's held-out accuracy under 20 sampling seeds (the benchmark's protocol: T 1.0, avg@5,
96 rows); seed 0 is the benchmark's own measurement. Usage: python start_sampling_noise.py OUT_DIR"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[0]))
import torch  # noqa: E402

from skywork_rl.families.parts import load_model_and_processor  # noqa: E402
from skywork_rl.generation.protocol import SamplingParams  # noqa: E402
from skywork_rl.miniature.heldout import heldout_result  # noqa: E402

out = Path(sys.argv[1])
recorded = json.loads((out / "ssb_learning.json").read_text())
setup = recorded["setup"]
sys.path.insert(0, "benchmarks")
from miniature import heldout_rows  # noqa: E402

torch.set_num_threads(1)
args = argparse.Namespace(**{**setup, "out": out})
rows = heldout_rows(args)
model, processor = load_model_and_processor(str(out / "start"))
values = []
started = time.process_time()
for seed in range(20):
    sampling = SamplingParams(max_new_tokens=setup["max_completion_length"], temperature=setup["heldout_temperature"], seed=seed)
    values.append(heldout_result(model, processor, rows, sampling=sampling, num_samples=setup["heldout_samples"]).accuracy)
    print(seed, values[-1], flush=True)
result = {
    "start": str(out / "start"),
    "protocol": {k: setup[k] for k in ("heldout_rows", "heldout_temperature", "heldout_samples", "max_completion_length")},
    "sampling_seeds": list(range(20)),
    "accuracy": values,
    "mean": statistics.mean(values),
    "stdev": statistics.stdev(values),
    "recorded_start": recorded["variants"]["plain"]["heldout_accuracy_start"],
    "cpu_s": round(time.process_time() - started, 1),
}
(out / "start_sampling_noise.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps({k: v for k, v in result.items() if k != "accuracy"}, indent=2))
