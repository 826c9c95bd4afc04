"""The preflight `stage` and `run` run before training where GPUs are visible (issue 21, Why 4 and 5).

No GPU is here: $SKYWORK_RL_PREFLIGHT_GPUS states the GPUs a machine would have (preflight_layout), so
the guard runs exactly as on that machine. Model sizes come from tests/fixtures/model_configs
($SKYWORK_MODEL_CONFIG_DIR); nothing is downloaded, and no stage process or trainer is ever started:
the launch and run functions are replaced by ones that fail the test if called.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from skywork_rl import cli
from skywork_rl.preflight.command import main as preflight_main
from skywork_rl.preflight.command import preflight_recipe
from skywork_rl.preflight.guard import CHECKED_ENV
from skywork_rl.preflight.layout import GPUS_ENV, Hardware
from skywork_rl.preflight.shapes import MODEL_CONFIG_DIR_ENV, load_shape

REPO = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).parent / "fixtures" / "model_configs"
R1V3_GRPO = REPO / "recipes/skywork-r1v3/grpo.yaml"
R1V3_8B_GRPO = REPO / "recipes/skywork-r1v3-8b/grpo.yaml"


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every way a stage could start: accelerate's launch, the in-process stage,
    a pipeline's stage process."""
    started: list[str] = []

    def launch_stage(name, launch_args, stage_args):
        started.append(f"launch {name}")
        return 0

    def run_stage(stage, force=False):
        started.append("run_stage")

    def run_streaming(cmd, env, on_output):
        started.append(" ".join(cmd))
        return 0

    monkeypatch.setattr("skywork_rl.stages.launch.launch_stage", launch_stage)
    monkeypatch.setattr("skywork_rl.stages.base.run_stage", run_stage)
    monkeypatch.setattr("skywork_rl.runner.pipeline.run_streaming", run_streaming)
    monkeypatch.setenv(MODEL_CONFIG_DIR_ENV, str(CONFIGS))
    monkeypatch.delenv(CHECKED_ENV, raising=False)
    return started


def _stage(tmp_path: Path, recipe: Path, *extra: str) -> list[str]:
    return ["stage", "grpo", "--config", str(recipe), "--training.output_dir", str(tmp_path / "out"), *extra]


def test_stage_on_8_gpus_refuses_the_32_process_episode_before_launching(
    tmp_path, monkeypatch, capsys, nothing_starts
):
    # R1V3's grpo.yaml is sized for 32 processes (2 x 32 x 16 = 1024 rollouts); on one 8-GPU node
    # it would silently train on 256-rollout episodes
    monkeypatch.setenv(GPUS_ENV, "8x80GB")
    args = _stage(tmp_path, R1V3_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-38B-hf")
    code = cli.main(
        [
            *args,
            "--num_processes",
            "8",
            "--accelerate_config",
            str(REPO / "recipes/accelerate/zero3_offload.yaml"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and nothing_starts == []
    assert (
        "rollouts_per_episode = 2 per device x 8 processes x 16 steps_per_generation: this launch makes it 256, "
        "the paper's is 1024" in err
    )
    assert "training.steps_per_generation: 64, training.gradient_accumulation_steps: 64" in err
    assert "--skip-preflight" in err


def test_one_gpu_with_the_8_process_zero3_config_is_refused_before_launching(
    tmp_path, monkeypatch, capsys, nothing_starts
):
    monkeypatch.setenv(GPUS_ENV, "1x80GB")
    args = _stage(tmp_path, R1V3_8B_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-8B-hf")
    code = cli.main([*args, "--accelerate_config", str(REPO / "recipes/accelerate/zero3.yaml")])
    err = capsys.readouterr().err
    assert code == 1 and nothing_starts == []
    assert "processes per node vs this machine's GPUs: needs 8 processes, has 1 GPUs" in err
    assert "--num_processes 1" in err


def test_one_process_with_vllm_tensor_parallel_4_is_refused_before_launching(
    tmp_path, monkeypatch, capsys, nothing_starts
):
    monkeypatch.setenv(GPUS_ENV, "8x80GB")
    args = _stage(tmp_path, R1V3_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-38B-hf")
    acc = str(REPO / "recipes/accelerate/zero3_offload.yaml")
    code = cli.main([*args, "--num_processes", "1", "--accelerate_config", acc])
    err = capsys.readouterr().err
    assert code == 1 and nothing_starts == []
    assert "world size divisible by vLLM TP: needs TP 4, has 1 processes" in err


def test_skip_preflight_launches_what_preflight_refuses(tmp_path, monkeypatch, nothing_starts):
    monkeypatch.setenv(GPUS_ENV, "1x80GB")
    args = _stage(tmp_path, R1V3_8B_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-8B-hf")
    acc = str(REPO / "recipes/accelerate/zero3.yaml")
    assert cli.main([*args, "--accelerate_config", acc, "--skip-preflight"]) == 0
    assert nothing_starts == ["launch grpo"]


def test_without_gpus_the_stage_is_not_checked(tmp_path, monkeypatch, nothing_starts):
    monkeypatch.delenv(GPUS_ENV, raising=False)
    args = _stage(tmp_path, R1V3_8B_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-8B-hf")
    assert cli.main([*args, "--accelerate_config", str(REPO / "recipes/accelerate/zero3.yaml")]) == 0
    assert nothing_starts == ["launch grpo"]


def test_preflight_command_and_the_stage_guard_refuse_alike(tmp_path, monkeypatch, capsys, nothing_starts):
    """Same code path: `skywork-rl preflight` on this machine's GPUs names the refusals `stage` raises."""
    monkeypatch.setenv(GPUS_ENV, "1x80GB")
    config = yaml.safe_load(R1V3_8B_GRPO.read_text())
    config["model"]["name_or_path"] = "OpenGVLab/InternVL3-8B-hf"
    config["training"]["output_dir"] = str(tmp_path / "out")
    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(yaml.safe_dump(config))
    acc = str(REPO / "recipes/accelerate/zero3.yaml")
    assert preflight_main([str(recipe), "--accelerate-config", acc]) == 1
    out = capsys.readouterr().out
    refused = out.split("\nrefused:\n")[1].split("\n\n")[0].splitlines()
    assert len(refused) >= 2  # 8 processes on 1 GPU, and the training step
    assert cli.main(["stage", "grpo", "--config", str(recipe), "--accelerate_config", acc]) == 1
    err = capsys.readouterr().err
    assert nothing_starts == []
    for line in refused:
        assert line.strip() in err


def test_run_refuses_the_plan_before_its_first_stage_starts(tmp_path, monkeypatch, capsys, nothing_starts):
    from skywork_rl.runner.pipeline import main as run_main

    monkeypatch.setenv(GPUS_ENV, "1x80GB")  # zero2.yaml starts 8 processes per training stage
    out_root = tmp_path / "outputs"
    pipeline = str(REPO / "recipes/skywork-r1v3-8b/pipeline.yaml")
    with pytest.raises(
        Exception, match=r"preflight refused: stage cold-start: vLLM TP 8.*stage sft: processes per node"
    ):
        run_main([pipeline, "--output-root", str(out_root)])
    assert nothing_starts == [] and not out_root.exists()
    assert "processes per node vs this machine's GPUs" in capsys.readouterr().out
    # --skip-preflight: the runner starts its first stage
    run_main([pipeline, "--output-root", str(out_root), "--skip-preflight", "--only", "scienceqa"])
    assert len(nothing_starts) == 1 and "load-data" in nothing_starts[0]


def test_8b_grpo_counts_the_verifier_vision_tower_and_pixel_values(tmp_path):
    """Issue 21, Why 5: 8 x 12K-token micro-batches of the 8B on 8 x 80 GB were 72.8 GB by the old count;
    the verifier held whole on every GPU, the trained vision tower's activations and the generation
    batch's pixel values make them ~99 GB: refused, with the micro-batch that fits."""
    config = yaml.safe_load(R1V3_8B_GRPO.read_text())
    config["training"].update(
        per_device_train_batch_size=8,
        gradient_accumulation_steps=16,
        steps_per_generation=16,
        max_completion_length=8192,
    )
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(config))
    report = preflight_recipe(
        path,
        "grpo",
        accelerate_config=REPO / "recipes/accelerate/zero2.yaml",
        model="OpenGVLab/InternVL3-8B-hf",
        hardware=Hardware(8, 80 * 10**9, 1, 10**12, 4 * 10**12),
        model_config_dir=CONFIGS,
    )
    rows = {r.item: r for r in report.rows}
    verifier = load_shape("Qwen/Qwen2.5-7B-Instruct", CONFIGS)
    assert rows["verifier Qwen/Qwen2.5-7B-Instruct (whole on every GPU)"].needed == 2 * verifier.total_params
    tower = rows["vision tower activations: 8 images x 13325 tokens, checkpointed"].needed
    # InternViT-300M, checkpointed: 24 layers x 106,600 tokens x 1024 x 2 bytes + one layer's 16 x 1024
    assert tower == 24 * 106_600 * 1024 * 2 + 106_600 * 16 * 1024 * 2
    # 8 x 16 samples of 13 tiles of 3 x 448 x 448 values, bf16 under DeepSpeed
    assert rows["generation batch pixel values: 128 images"].needed == 128 * 13 * 3 * 448 * 448 * 2
    step = rows["GPU: training step"]
    assert step.verdict == "REFUSED" and 95e9 < step.needed < 102e9
    assert step.hint.startswith("4 fits")
    # the engine's KV cache (0.3 x 80 GB less 15.9 GB of weights and 4 GB) runs 5 of 128 rollouts at once
    kv = next(r for r in report.rows if r.item.startswith("vLLM sequences at once"))
    assert kv.verdict == "warn" and kv.available.startswith("5 at once")
    assert "warnings:" in report.render()


def test_r1v3_38b_engine_kv_cache_holds_about_73k_tokens():
    report = preflight_recipe(
        R1V3_GRPO,
        "grpo",
        accelerate_config=REPO / "recipes/accelerate/multi_node_zero3.yaml",
        model="OpenGVLab/InternVL3-38B-hf",
        hardware=Hardware(8, 80 * 10**9, 4, 10**12, 4 * 10**12),
        model_config_dir=CONFIGS,
    )
    kv = next(r for r in report.rows if r.item.startswith("vLLM sequences at once"))
    tokens = int(re.search(r"\((\d+) KV tokens", kv.item).group(1))
    assert 72_000 < tokens < 75_000
    assert kv.needed == "128 rollouts per engine" and kv.verdict == "warn"
    assert not report.refused  # 2 x 32 x 16 = 1024 on the 32 processes the recipe documents


def test_r1v2_pairs_reward_model_beside_the_075_engine_is_refused(tmp_path):
    """R1V2's pairs stage scores with the 7B VLM reward model on the engine's first GPU while the TP-8
    engine keeps its share there: at 0.75 x 80 GB that is ~97 GB."""
    from skywork_rl.preflight.command import preflight_pipeline

    spec = yaml.safe_load((REPO / "recipes/skywork-r1v2/pipeline.yaml").read_text())
    pairs = next(s for s in spec["stages"] if s["id"] == "pairs")
    pairs["config"]["model"]["backend_kwargs"]["gpu_memory_utilization"] = 0.75
    spec["stages"] = [s for s in spec["stages"] if s["id"] in ("source", "pairs")]
    spec["accelerate_config"] = str(REPO / "recipes/accelerate/zero3_offload.yaml")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    report = preflight_pipeline(
        path, hardware=Hardware(8, 80 * 10**9, 1, 10**12, 4 * 10**12), model_config_dir=CONFIGS
    )
    (row,) = report.refused
    assert row.stage == "pairs" and row.key == "model.backend_kwargs.gpu_memory_utilization"
    rm = load_shape("Skywork/Skywork-VL-Reward-7B", CONFIGS)
    assert row.needed == 60 * 10**9 + 2 * rm.total_params + 4 * 33280 * (2 * 3584 + 3 * 18944) * 2 + 3 * 10**9


def test_inside_accelerate_launch_the_launchs_own_world_is_judged(
    tmp_path, monkeypatch, capsys, nothing_starts
):
    """`accelerate launch --num_processes 8 ... -m skywork_rl.cli stage grpo` on a 1-GPU machine: every
    rank reads the launch from its environment and refuses before building a trainer."""
    monkeypatch.setenv(GPUS_ENV, "1x80GB")
    launch_env = {
        "ACCELERATE_MIXED_PRECISION": "bf16",
        "WORLD_SIZE": "8",
        "LOCAL_WORLD_SIZE": "8",
        "RANK": "3",
        "ACCELERATE_USE_DEEPSPEED": "true",
        "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2",
    }
    for key, value in launch_env.items():
        monkeypatch.setenv(key, value)
    args = _stage(tmp_path, R1V3_8B_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-8B-hf")
    assert cli.main(args) == 1
    captured = capsys.readouterr()
    assert nothing_starts == []
    assert "processes per node vs this machine's GPUs: needs 8 processes, has 1 GPUs" in captured.err
    assert "this accelerate launch starts 8 per node" in captured.err
    assert captured.out == ""  # rank 3 does not print the table; rank 0 does


def test_a_plan_that_fits_launches_after_a_brief_report(tmp_path, monkeypatch, capsys, nothing_starts):
    monkeypatch.setenv(GPUS_ENV, "8x80GB")
    monkeypatch.setattr("skywork_rl.preflight.layout.free_disk", lambda path="outputs": 4 * 10**12)
    args = _stage(tmp_path, R1V3_8B_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-8B-hf")
    assert cli.main([*args, "--accelerate_config", str(REPO / "recipes/accelerate/zero2.yaml")]) == 0
    assert nothing_starts == ["launch grpo"]
    out = capsys.readouterr().out
    assert re.search(r"preflight: \d+ checked, 0 unchecked; nothing refused", out)
    assert "vLLM sequences at once" in out  # the KV warning is shown
    assert "GPU: training step" not in out  # the table is `skywork-rl preflight`'s


def test_paper_episode_sizes_come_from_paper_values_for_paper_recipes_and_their_variants():
    from skywork_rl.preflight.command import paper_sizes

    episode = {"rollouts_per_episode": (1024, "1024 rollouts per episode")}
    assert paper_sizes(recipe=R1V3_GRPO) == episode
    assert paper_sizes(recipe=REPO / "recipes/skywork-r1v3/grpo_ssb.yaml") == episode  # a named variant
    assert paper_sizes(pipeline=REPO / "recipes/skywork-r1v3-8b/pipeline.yaml", stage_id="grpo-8k") == episode
    assert paper_sizes(recipe=REPO / "recipes/skywork-r1v3/connector.yaml") == {
        "batch_size": (64, "batch 64")
    }
    assert paper_sizes(recipe=REPO / "recipes/tiny/grpo.yaml") is None  # no paper episode to hold it to


def test_38b_grpo_on_one_node_with_zero3_is_refused_for_memory_before_launching(
    tmp_path, monkeypatch, capsys, nothing_starts
):
    """Issue 21, Why 4: R1V3's 38B GRPO with zero3.yaml on one 8 x 80 GB node (no offload) died of CUDA
    OOM after a full rollout; the guard refuses it first, naming the step and the key."""
    monkeypatch.setenv(GPUS_ENV, "8x80GB")
    args = _stage(tmp_path, R1V3_GRPO, "--model.name_or_path", "OpenGVLab/InternVL3-38B-hf")
    args += ["--training.gradient_accumulation_steps", "64", "--training.steps_per_generation", "64"]
    code = cli.main([*args, "--accelerate_config", str(REPO / "recipes/accelerate/zero3.yaml")])
    err = capsys.readouterr().err
    assert code == 1 and nothing_starts == []
    step = re.search(r"stage grpo: GPU: training step: needs ([\d.]+) GB, has 80.0 GB", err)
    assert step and float(step.group(1)) > 98
    assert "rollouts_per_episode" not in err  # 2 x 8 x 64 keeps the paper's 1024
