"""A second model loaded under ZeRO-3 in the same process (TRL's MPO reference model, a verifier) runs
its forward: the LLM's modeling module is imported before DeepSpeed's `zero.Init` (found by the R1V2
rehearsal, whose MPO stage failed at the reference model's first forward)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A fresh interpreter: the bug depends on which modeling modules were imported before zero.Init.
SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2], RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    import deepspeed, torch
    deepspeed.init_distributed(dist_backend="gloo")
    from transformers.integrations import HfDeepSpeedConfig
    keep = HfDeepSpeedConfig({"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}})
    from skywork_rl.families.parts import load_model_and_processor
    policy, _ = load_model_and_processor(sys.argv[1])
    reference, processor = load_model_and_processor(sys.argv[1])  # as TRL's DPO trainer loads its reference
    ids = processor.tokenizer("a b c", return_tensors="pt")["input_ids"]
    with deepspeed.zero.GatheredParameters(list(reference.parameters())):
        print("logits", tuple(reference(input_ids=ids).logits.shape))
    """
)


@pytest.mark.slow
def test_second_model_loaded_under_zero3_runs_its_forward(tiny_internvl, tmp_path):
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")
    script = tmp_path / "reload.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    port = str(29700 + os.getpid() % 200)
    result = subprocess.run(
        [sys.executable, str(script), str(tiny_internvl), port],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "logits" in result.stdout
