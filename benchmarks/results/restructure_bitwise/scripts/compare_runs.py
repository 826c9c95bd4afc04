"""Compare every safetensors file (tensor by tensor, bitwise) and the report metrics of two tiny-pipeline runs."""
import json, sys
from pathlib import Path
from safetensors.torch import load_file
import torch
a, b = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(p.relative_to(a) for p in a.rglob("*.safetensors") if ".datasets_cache" not in str(p))
bad = 0
for rel in files:
    x, y = load_file(a / rel), load_file(b / rel) if (b / rel).exists() else None
    if y is None:
        print("MISSING", rel); bad += 1; continue
    same = x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    print("same" if same else "DIFFER", rel, len(x), "tensors"); bad += not same
ra, rb = (json.loads((p / "pipeline_report.json").read_text()) for p in (a, b))
print("reports equal:", json.dumps(ra.get("stages", ra), sort_keys=True, default=str) == json.dumps(rb.get("stages", rb), sort_keys=True, default=str))
print("files compared:", len(files), "differ/missing:", bad)
