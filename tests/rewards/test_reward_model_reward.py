"""Reward-model reward: tiny text RM (Qwen2ForSequenceClassification) and tiny VLM RM (sees the image)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from skywork_rl.errors import SkyworkError  # noqa: E402
from skywork_rl.rewards.config import RewardArguments  # noqa: E402
from skywork_rl.rewards.registry import build_reward_funcs  # noqa: E402
from skywork_rl.rewards.reward_model import RewardModelReward, VLMRewardModel, normalize_scores  # noqa: E402


@pytest.fixture(scope="module")
def text_rm_dir(tiny_text_rm: Path) -> Path:
    return tiny_text_rm


PROMPTS = [[{"role": "user", "content": "What is 2 + 2?"}]] * 2 + ["What is 3 + 3?"]
COMPLETIONS = [
    [{"role": "assistant", "content": "<think> add </think> The answer is \\boxed{4}."}],
    [{"role": "assistant", "content": "5"}],
    "<think> 3 + 3 </think> \\boxed{6}",
]


def test_text_rm_scores_are_independent_of_batching(text_rm_dir: Path) -> None:
    batched = RewardModelReward(str(text_rm_dir), device="cpu", batch_size=3)
    single = RewardModelReward(str(text_rm_dir), device="cpu", batch_size=1)
    scores = batched(prompts=PROMPTS, completions=COMPLETIONS)
    assert batched.kind == "text"
    assert len(scores) == 3 and len(set(scores)) == 3
    assert scores == pytest.approx(single(prompts=PROMPTS, completions=COMPLETIONS), abs=1e-5)


def test_rm_scoring_keeps_no_autograd_graph(text_rm_dir: Path) -> None:
    """Issue 21: scoring with autograd on keeps every layer's activations (OOM at a real RM's first call)."""
    reward = RewardModelReward(str(text_rm_dir), device="cpu", batch_size=3)
    reward.load()
    assert any(p.requires_grad for p in reward._model.parameters())  # as loaded: autograd would track it
    seen: list[tuple[bool, bool, bool]] = []

    def record(module: object, args: object, output: object) -> None:
        logits = output.logits
        seen.append((torch.is_inference_mode_enabled(), logits.requires_grad, logits.grad_fn is not None))

    handle = reward._model.register_forward_hook(record)
    try:
        reward(prompts=PROMPTS, completions=COMPLETIONS)
    finally:
        handle.remove()
    assert seen == [(True, False, False)]


def test_text_rm_normalisation_options(text_rm_dir: Path) -> None:
    raw = RewardModelReward(str(text_rm_dir), device="cpu").score(PROMPTS, COMPLETIONS)
    sig = RewardModelReward(str(text_rm_dir), device="cpu", normalize="sigmoid")(
        prompts=PROMPTS, completions=COMPLETIONS
    )
    assert sig == pytest.approx([1 / (1 + torch.exp(torch.tensor(-s)).item()) for s in raw], abs=1e-6)
    z = normalize_scores(raw, "batch_zscore")
    assert sum(z) == pytest.approx(0.0, abs=1e-6)
    assert normalize_scores([2.0, 2.0], "batch_zscore") == [0.0, 0.0]


def test_text_rm_in_hybrid_mix_only_rewards_correct_answers(text_rm_dir: Path) -> None:
    args = RewardArguments(
        reward_funcs=["accuracy", "reward_model"],
        reward_weights=[1.0, 0.5],
        mix="hybrid",
        reward_model=str(text_rm_dir),
        reward_model_normalize="sigmoid",
        rm_gate="correct",
        num_workers=0,
    )
    (hybrid,), weights = build_reward_funcs(args, device="cpu")
    metrics: dict[str, float] = {}
    totals = hybrid(
        prompts=PROMPTS, completions=COMPLETIONS, solution=["4", "4", "6"], log_metric=metrics.__setitem__
    )
    assert weights is None
    assert totals[1] == 0.0  # wrong answer: neither accuracy nor RM credit
    assert 1.0 < totals[0] < 1.5 and 1.0 < totals[2] < 1.5
    assert metrics["rewards/reward_model/failures"] == 0.0


def test_rm_that_cannot_load_raises_naming_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    broken = RewardModelReward(missing, device="cpu", kind="text")
    with pytest.raises(SkyworkError, match=f"rewards.reward_model: no checkpoint folder at '{missing}'"):
        broken(prompts=["p"], completions=["c"], log_metric=lambda name, value: None)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        # any error on every item: raised, never a batch of zeros
        (
            RuntimeError("mat1 and mat2 shapes cannot be multiplied (3x32 and 64x1)"),
            r"all 3 items failed \(first: RuntimeError: mat1 and mat2",
        ),
        # out of memory: raised naming the batch size to lower
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB"),
            "out of memory on 3 items; lower rewards.reward_model_batch_size",
        ),
    ],
    ids=["error_on_every_item", "out_of_memory"],
)
def test_rm_forward_failing_on_every_item_raises_naming_the_cause_instead_of_scoring_zero(
    text_rm_dir: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, message: str
) -> None:
    reward = RewardModelReward(str(text_rm_dir), device="cpu")
    reward.load()

    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(reward._model, "forward", failing)
    with pytest.raises(SkyworkError, match=message):
        reward(prompts=PROMPTS, completions=COMPLETIONS, log_metric=lambda name, value: None)


def test_one_broken_item_is_counted_and_the_rest_of_its_batch_still_scores(
    text_rm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    completions = [*COMPLETIONS, "zz"]
    prompts = [*PROMPTS, "What is 1 + 1?"]
    singles = RewardModelReward(str(text_rm_dir), device="cpu", batch_size=1).score(PROMPTS, COMPLETIONS)
    reward = RewardModelReward(str(text_rm_dir), device="cpu", batch_size=4)
    reward.load()
    forward = reward._model.forward

    def breaks_on_zz(input_ids: torch.Tensor, **kwargs: object) -> object:
        if any("zz" in text for text in reward._processor.batch_decode(input_ids)):
            raise RuntimeError("index out of range in self")
        return forward(input_ids=input_ids, **kwargs)

    monkeypatch.setattr(reward._model, "forward", breaks_on_zz)
    metrics: dict[str, float] = {}
    scores = reward(prompts=prompts, completions=completions, log_metric=metrics.__setitem__)
    assert scores[3] is None and metrics["rewards/reward_model/failures"] == 1.0
    assert scores[:3] == pytest.approx(singles, abs=1e-5)


def test_rm_inputs_over_max_length_lose_their_left_end_and_are_counted(text_rm_dir: Path) -> None:
    from skywork_rl.rewards.rm_inputs import render_conversation

    reward = RewardModelReward(str(text_rm_dir), device="cpu", max_length=6)
    metrics: dict[str, float] = {}
    scores = reward(prompts=PROMPTS, completions=COMPLETIONS, log_metric=metrics.__setitem__)
    model, tokenizer = reward._model, reward._processor
    expected, longer = [], 0
    for prompt, completion in zip(PROMPTS, COMPLETIONS, strict=True):
        ids = tokenizer(render_conversation(tokenizer, "text", prompt, completion), add_special_tokens=False)
        longer += len(ids["input_ids"]) > 6
        with torch.no_grad():
            expected.append(model(input_ids=torch.tensor([ids["input_ids"][-6:]])).logits[0, 0].item())
    assert longer == 3 and metrics["rewards/reward_model/truncated"] == 3.0
    assert scores == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_vlm_rm_sees_the_image_and_its_head_round_trips(tiny_internvl: Path, tmp_path: Path) -> None:
    from PIL import Image

    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    completion = [{"role": "assistant", "content": "<think> look </think> \\boxed{red}"}]
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    with pytest.raises(FileNotFoundError, match="no reward head"):
        VLMRewardModel.from_pretrained(tiny_internvl)
    reward = RewardModelReward(str(tiny_internvl), device="cpu", batch_size=2, allow_random_head=True)
    scores = reward(prompts=[prompt, prompt], completions=[completion, completion], images=[[red], [blue]])
    assert reward.kind == "vlm"
    assert all(torch.isfinite(torch.tensor(scores)))
    assert scores[0] != pytest.approx(scores[1], abs=1e-7)  # different image, different score
    single = RewardModelReward(str(tiny_internvl), device="cpu", batch_size=1, allow_random_head=True)
    assert single(prompts=[prompt], completions=[completion], image=[red]) == pytest.approx(
        scores[:1], abs=1e-4
    )
    # A saved VLM RM carries its head: reloading needs no random head and gives the same scores.
    reward._model.save_pretrained(tmp_path / "vlm-rm")
    reward._processor.save_pretrained(tmp_path / "vlm-rm")
    reloaded = RewardModelReward(str(tmp_path / "vlm-rm"), device="cpu", batch_size=2)
    again = reloaded(prompts=[prompt, prompt], completions=[completion, completion], images=[[red], [blue]])
    assert again == pytest.approx(scores, abs=1e-5)


@pytest.fixture(scope="module")
def vlm_rm_dir(tiny_internvl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny InternVL with a seeded reward head, saved as a VLM reward model folder."""
    from transformers import AutoProcessor

    model = VLMRewardModel.from_pretrained(tiny_internvl, allow_random_head=True, seed=3)
    out = tmp_path_factory.mktemp("vlm-rm")
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(tiny_internvl).save_pretrained(out)
    return out


def _image_prompt(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


@pytest.mark.slow
def test_vlm_rm_scores_the_base_models_last_hidden_state_and_never_runs_the_lm_head(vlm_rm_dir: Path) -> None:
    from PIL import Image

    reward = RewardModelReward(str(vlm_rm_dir), device="cpu", batch_size=2)
    reward.load()
    lm_head_calls: list[int] = []
    reward._model.backbone.lm_head.register_forward_hook(lambda *args: lm_head_calls.append(1))
    prompts = [_image_prompt("What colour?")] * 2
    completions = ["<think> look </think> \\boxed{red}", "<think> hmm </think> \\boxed{blue, surely}"]
    images = [[Image.new("RGB", (32, 32), (255, 0, 0))], [Image.new("RGB", (32, 32), (0, 0, 255))]]
    scores = reward(prompts=prompts, completions=completions, images=images)
    assert lm_head_calls == []
    # The same numbers as the full model's last-layer hidden state at each row's last token.
    inputs = reward._encode(
        [
            reward._processor.apply_chat_template(
                [*p, {"role": "assistant", "content": [{"type": "text", "text": c}]}], tokenize=False
            )
            for p, c in zip(prompts, completions, strict=True)
        ],
        images,
    )
    with torch.no_grad():
        hidden = reward._model.backbone(**inputs, output_hidden_states=True).hidden_states[-1]
        last = inputs["attention_mask"].sum(dim=1) - 1
        expected = reward._model.head(hidden[torch.arange(2), last]).squeeze(-1).tolist()
    assert scores == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_vlm_rm_counts_an_item_that_cannot_fit_without_cutting_its_image_tokens(vlm_rm_dir: Path) -> None:
    from PIL import Image

    short = ([{"role": "user", "content": "Hi?"}], "\\boxed{1}")
    long_text = ([{"role": "user", "content": "Please " * 40 + "add 2 and 2."}], "\\boxed{4}")
    with_image = (_image_prompt("What colour?"), "<think> " + "red " * 40 + "</think> \\boxed{red}")
    reward = RewardModelReward(str(vlm_rm_dir), device="cpu", batch_size=3, max_length=40)
    metrics: dict[str, float] = {}
    prompts, completions = zip(short, long_text, with_image, strict=True)
    images = [[], [], [Image.new("RGB", (32, 32), (255, 0, 0))]]
    scores = reward(
        prompts=list(prompts), completions=list(completions), images=images, log_metric=metrics.__setitem__
    )
    assert scores[0] is not None and scores[1] is not None and scores[2] is None
    assert metrics["rewards/reward_model/failures"] == 1.0  # the image item: its image tokens would be cut
    assert metrics["rewards/reward_model/truncated"] == 1.0  # the long text item lost its first tokens


def _fake_hub_cache(root: Path, repo_id: str, checkpoint: Path) -> Path:
    """An HF hub cache holding `checkpoint` as `repo_id` (the layout huggingface_hub writes)."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return root


@pytest.mark.slow
def test_rm_hub_id_loads_from_the_local_cache_with_its_value_head(
    vlm_rm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub id resolves to its cached snapshot, and the head stored as Skywork-VL-Reward stores it
    (TRL's `v_head.summary` inside the model weights) is found there, offline."""
    import shutil

    from PIL import Image
    from safetensors.torch import load_file, save_file

    from skywork_rl.rewards.vlm_reward_model import HEAD_FILE

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(vlm_rm_dir, checkpoint)
    head = load_file(str(checkpoint / HEAD_FILE))
    (checkpoint / HEAD_FILE).unlink()
    weights = load_file(str(checkpoint / "model.safetensors"))
    weights.update({f"v_head.summary.{k}": v for k, v in head.items()})
    save_file(weights, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    cache = _fake_hub_cache(tmp_path / "hub", "fake-org/tiny-vl-rm", checkpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    prompts = [_image_prompt("What colour?")]
    completions, images = ["\\boxed{red}"], [[Image.new("RGB", (32, 32), (255, 0, 0))]]
    by_id = RewardModelReward("fake-org/tiny-vl-rm", device="cpu").score(prompts, completions, images)
    by_folder = RewardModelReward(str(vlm_rm_dir), device="cpu").score(prompts, completions, images)
    assert by_id == pytest.approx(by_folder, abs=1e-6)
    with pytest.raises(SkyworkError, match=r"'fake-org/absent'.*not in the HF cache.*HF_HUB_OFFLINE is set"):
        RewardModelReward("fake-org/absent", device="cpu").load()


def test_rewards_load_outside_zero3_init_while_a_zero3_trainer_is_configured() -> None:
    pytest.importorskip("deepspeed")
    from transformers.integrations import HfDeepSpeedConfig, is_deepspeed_zero3_enabled

    from skywork_rl.rewards.loading import outside_zero3_init

    trainer_config = HfDeepSpeedConfig({"zero_optimization": {"stage": 3}, "train_batch_size": 1})
    assert is_deepspeed_zero3_enabled()
    with outside_zero3_init():
        assert not is_deepspeed_zero3_enabled()  # from_pretrained here does not partition
    assert is_deepspeed_zero3_enabled()
    del trainer_config


_ZERO3_SCRIPT = """
import json, sys
from skywork_rl.rewards.reward_model import RewardModelReward

rm_dir, out = sys.argv[1], sys.argv[2]
prompts = [[{"role": "user", "content": f"What is {i} + {i}?"}] for i in range(5)]
completions = [f"<think> add </think> The answer is \\\\boxed{{{2 * i + (i % 2)}}}." for i in range(5)]
alone = RewardModelReward(rm_dir, device="cpu", batch_size=2).score(prompts, completions)

from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments
from transformers.integrations import is_deepspeed_zero3_enabled

# A trainer under `accelerate launch` with a ZeRO-3 config: it registers the process-wide DeepSpeed
# config that from_pretrained reads and the accelerator state TRL places reward models by. Its own
# model (the "policy") loads partitioned by zero.Init, as a training stage's does.
args = TrainingArguments(output_dir=out, report_to=[], per_device_train_batch_size=2, use_cpu=True)
args.device  # sets up the process group, so the DeepSpeed config gets the world size (as trainers do)
assert is_deepspeed_zero3_enabled()
trainer = Trainer(model=AutoModelForSequenceClassification.from_pretrained(rm_dir), args=args)
accelerator = trainer.accelerator
reward = RewardModelReward(rm_dir, batch_size=2)
sharded = reward.score(prompts, completions)
local = [p.ds_tensor.numel() for p in reward._model.module.parameters()]
full = [p.ds_numel for p in reward._model.module.parameters()]
with open(f"{out}/rank{accelerator.process_index}.json", "w") as f:
    json.dump({"alone": alone, "sharded": sharded, "is_sharded": reward.sharded,
               "engine": type(reward._model).__name__, "local": sum(local), "full": sum(full)}, f)
"""


@pytest.mark.slow
def test_text_rm_under_zero3_is_partitioned_by_a_deepspeed_engine_and_scores_as_unsharded(
    text_rm_dir: Path, tmp_path: Path
) -> None:
    """Two CPU processes under recipes/accelerate/zero3.yaml: the RM loads (outside zero.Init) and is
    placed by TRL's prepare_deepspeed, each rank holding part of its weights, with the same scores."""
    import json
    import subprocess

    from helpers import accelerate_command, launch_env

    pytest.importorskip("deepspeed")
    repo = Path(__file__).resolve().parents[2]
    script = tmp_path / "zero3_rm.py"
    script.write_text(_ZERO3_SCRIPT)
    command = accelerate_command("zero3.yaml", str(script), str(text_rm_dir), str(tmp_path))
    result = subprocess.run(command, env=launch_env(), capture_output=True, text=True, timeout=600, cwd=repo)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for rank in (0, 1):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert record["engine"] == "DeepSpeedEngine" and record["is_sharded"]
        assert record["local"] < record["full"]  # this rank holds only its partition of the weights
        assert record["sharded"] == pytest.approx(record["alone"], abs=1e-5)
