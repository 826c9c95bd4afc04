"""The project's main job: the tiny pipeline runs end to end through the real CLI and `accelerate launch`.

The pipeline runs once (a module fixture); each test checks one thing that run must have done: the
papers' mechanisms (R1V3's rules-OR-verifier accuracy, R1V2's margin-threshold pairs and filtered
prompt pool, R1V3's entropy selection feeding the connector stage) happened in real stages, and a
second run skips every stage.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# The run must cost under 1200 CPU seconds (asserted below); the timeout leaves room to report it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _command(root: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "skywork_rl.cli",
        "run",
        str(REPO / "recipes" / "tiny" / "pipeline.yaml"),
        *options,
        "--output-root",
        str(root),
    ]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the tiny pipeline, in a pseudo-terminal as a person runs it: its output root, wall
    time, closing report and what the terminal showed."""
    from test_console import _run_in_terminal

    root = tmp_path_factory.mktemp("tiny-pipeline") / "tiny"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"}
    t0, used0 = time.time(), _children_cpu_seconds()
    code, raw = _run_in_terminal(_command(root), env, timeout=1700)
    elapsed, cpu = time.time() - t0, _children_cpu_seconds() - used0
    print(f"tiny pipeline: {elapsed:.0f} s wall, {cpu:.0f} CPU s, load {os.getloadavg()[0]:.1f} at the end")
    shown = raw.decode(errors="replace")
    assert code == 0, shown[-3000:]
    report = json.loads((root / "pipeline_report.json").read_text())
    return {"root": root, "elapsed": elapsed, "cpu_seconds": cpu, "report": report, "stdout": shown}


def _children_cpu_seconds() -> float:
    """CPU time (user + system) of this process's finished children and everything they waited for:
    the run's own cost, which, unlike its wall time, does not grow when other jobs share the cores."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _metrics(run: dict[str, Any], stage_id: str) -> dict[str, float]:
    return next(s for s in run["report"]["stages"] if s["id"] == stage_id)["metrics"]


def _record(run: dict[str, Any], stage_id: str) -> dict[str, Any]:
    return json.loads((run["root"] / stage_id / "stage.json").read_text())


def _log_history(run_dir: Path) -> list[dict[str, Any]]:
    """The trainer's log history of a training stage, from its last checkpoint."""
    last = max(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return json.loads((last / "trainer_state.json").read_text())["log_history"]


def _llm_weights(folder: Path) -> dict[str, Any]:
    """The reasoning LLM's tensors of a saved tiny InternVL (everything but vision and connector)."""
    from safetensors.torch import load_file

    tensors = {}
    for shard in folder.glob("*.safetensors"):
        tensors.update(load_file(str(shard)))
    return {k: v for k, v in tensors.items() if k.startswith(("language_model.", "lm_head."))}


def test_tiny_pipeline_runs_every_stage_within_ten_minutes_of_two_cores_and_learns(tiny_run):
    """The whole pipeline costs under 10 minutes of a 2-core machine: 1200 CPU seconds. Its wall time
    is reported, not bounded: on shared cores it measures the other jobs (CI's run: 235 s idle; 719 s
    at load 10). CPU time grows far less with load, though not nothing (threads spin while they wait
    for a core). As shipped (140 SFT steps, 120 GRPO updates): 489 CPU s, 365 s wall, at load 0.8-1.3
    (benchmarks/results/tiny_pipeline/run.json, 2026-12-07). With 40 GRPO updates it was 389 CPU s at
    load 1.4-2.0 and 501-907 at load 1.7-3.8 (benchmarks/tiny_pipeline_seeds.py)."""
    assert tiny_run["cpu_seconds"] < 1200, (
        f"the tiny pipeline must cost under 10 minutes of 2 cores (1200 CPU s); it used "
        f"{tiny_run['cpu_seconds']:.0f} CPU s in {tiny_run['elapsed']:.0f} s wall"
    )
    stages = tiny_run["report"]["stages"]
    assert stages and all(s["status"] == "ran" for s in stages)
    sft = _metrics(tiny_run, "sft")
    assert sft["final_loss"] < sft["first_loss"]
    grpo = _metrics(tiny_run, "grpo")
    # The SFT model knows the answer format well enough that rollouts of a prompt differ in reward:
    # GRPO (and the buffer) get a learning signal in the main job, not only in the unit tests.
    assert grpo["final_frac_reward_zero_std"] < 1.0 and grpo["final_reward"] > 0.0
    # Held-out accuracy after every training stage, on problems no training split holds.
    report = tiny_run["report"]
    trained = [s for s in report["stages"] if s["stage"] in ("sft", "mpo", "grpo", "connector")]
    assert all("heldout/accuracy" in s["metrics"] for s in trained)
    heldout = report["heldout_accuracy"]
    assert list(heldout) == ["base", "sft", "mpo", "grpo", "grpo-pool", "connector"]
    assert heldout["sft"] > heldout["base"], heldout  # SFT teaches the answer format
    assert (tiny_run["root"] / "heldout_accuracy.png").stat().st_size > 0
    assert "held-out accuracy: base" in tiny_run["stdout"]


def test_tiny_pipeline_grpo_raises_heldout_accuracy_above_sft(tiny_run):
    """R1V3's claim in miniature, measured by its evaluation protocol (temperature 1.0, avg@5 on
    held-out problems): RL after SFT is worth at least 5 points."""
    heldout = tiny_run["report"]["heldout_accuracy"]
    assert heldout["grpo"] >= heldout["sft"] + 0.05, heldout


def test_tiny_pipeline_grpo_accuracy_is_the_rule_checker_or_the_llm_verifier(tiny_run):
    """R1V3's accuracy: the verifier reward ran in GRPO with the tiny judge checkpoint; the rules
    accepted answers, and the judge was asked (a random judge replies neither YES nor NO, which is
    counted as unparsable and leaves those answers to the rules)."""
    config = _record(tiny_run, "grpo")["resolved_config"]["rewards"]
    assert config["reward_funcs"][0] == "verifier"
    assert config["verifier_model"] == str(tiny_run["root"] / "verifier-model")
    history = [h for h in _log_history(tiny_run["root"] / "grpo") if "rewards/verifier/mean" in h]
    assert history, "no logged step of the grpo stage carries the verifier reward"
    total = {
        key: sum(h.get(f"rewards/verifier/{key}", 0.0) for h in history)
        for key in ("rule_only", "both", "judge_only", "judge_unparsable")
    }
    assert total["rule_only"] + total["both"] > 0, total  # rule-verifiable answers scored by the rules
    assert total["judge_unparsable"] + total["judge_only"] + total["both"] > 0, total  # the judge was asked
    assert sum(h["rewards/verifier/mean"] for h in history) > 0


def test_tiny_pipeline_mpo_trains_on_pairs_that_pass_the_reward_margin(tiny_run):
    """R1V2's calibrated threshold: the tiny reward model scored every candidate; pairs below the
    margin were dropped and counted, every kept pair reaches it, and MPO trained on the kept ones."""
    from datasets import load_from_disk

    pairs_dir = tiny_run["root"] / "pairs"
    manifest = json.loads((pairs_dir / "manifest.json").read_text())
    assert manifest["config"]["reward_model"]["name_or_path"] == str(tiny_run["root"] / "reward-model")
    min_margin = manifest["config"]["pairs"]["min_margin"]
    assert min_margin > 0
    assert manifest["dropped"].get("margin_below_min", 0) > 0
    assert manifest["rm_failures"] == 0
    pairs = load_from_disk(str(pairs_dir))
    assert len(pairs) == manifest["rows_out"] > 0
    assert all(
        c - r >= min_margin for c, r in zip(pairs["chosen_score"], pairs["rejected_score"], strict=True)
    )
    assert _record(tiny_run, "mpo")["input_data"] == str(pairs_dir)


def test_tiny_pipeline_second_rl_pass_trains_on_the_grpo_prompt_pool(tiny_run):
    """R1V2's filtered prompt pool: GRPO saved the prompts whose groups carried a non-zero advantage,
    and the next RL stage trained on exactly those rows."""
    from datasets import load_from_disk

    pool_dir = tiny_run["root"] / "grpo" / "prompt_pool"
    pool = load_from_disk(str(pool_dir))
    grpo = _metrics(tiny_run, "grpo")
    assert len(pool) == grpo["prompt_pool/rows"] > 0
    assert all(count >= 1 for count in pool["informative_groups"])
    assert sum(pool["informative_groups"]) == grpo["prompt_pool/informative_groups"]
    record = _record(tiny_run, "grpo-pool")
    assert record["resolved_config"]["data"]["train"] == str(pool_dir)
    assert record["input_model"] == str(tiny_run["root"] / "grpo")
    assert record["metrics"]["global_step"] > 0


def test_tiny_pipeline_connector_tunes_the_checkpoint_chosen_by_critical_token_entropy(tiny_run):
    """R1V3: the select stage measured the RL run's checkpoints and chose one by entropy; the
    connector stage started from that checkpoint (its frozen LLM is exactly the chosen one's)."""
    root = tiny_run["root"]
    selection = json.loads((root / "select" / "selection.json").read_text())
    candidates = sorted(str(p) for p in (root / "grpo-pool").glob("checkpoint-*"))
    assert len(candidates) >= 2 and sorted(selection["ranking"]) == candidates
    assert selection["chosen"] in candidates and "entropy" in selection["rule"]
    assert _metrics(tiny_run, "select")["select/candidates"] == len(candidates)
    assert _record(tiny_run, "connector")["input_model"] == str(root / "select")
    tuned = _llm_weights(root / "connector")
    chosen = _llm_weights(Path(selection["chosen"]))
    other = _llm_weights(Path(next(c for c in candidates if c != selection["chosen"])))
    assert tuned and tuned.keys() == chosen.keys()
    assert all((tuned[k] == chosen[k]).all() for k in tuned)
    assert any((other[k] != chosen[k]).any() for k in chosen), "the candidates do not differ"


def test_tiny_pipeline_in_a_terminal_stays_under_100_lines_with_live_progress(tiny_run):
    """What a person sees of `skywork-rl run`: a header per stage, progress bars redrawn in place, each
    warning once; everything else is in the stages' logs."""
    shown = tiny_run["stdout"]
    assert all(f"] {s['id']} ({s['stage']}): run, new" in shown for s in tiny_run["report"]["stages"])
    assert shown.count("\n") < 100, shown
    assert "%|" in shown and shown.count("\r") > shown.count("\n")  # bars drawn, redrawn in place
    sft_log = (tiny_run["root"] / "sft" / "stage.log").read_bytes()
    assert sft_log.count(b"'loss'") >= 2 and sft_log.count(b"\r") > 4  # the full output is in the log


def test_tiny_pipeline_rerun_skips_every_stage(tiny_run):
    second = subprocess.run(_command(tiny_run["root"], "--quiet"), cwd=REPO, capture_output=True, text=True)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    report = json.loads((tiny_run["root"] / "pipeline_report.json").read_text())
    not_skipped = {s["id"]: (s["status"], s.get("stale_reason") or s.get("reason")) for s in report["stages"]}
    not_skipped = {k: v for k, v in not_skipped.items() if v[0] != "skipped"}
    assert not not_skipped, not_skipped
