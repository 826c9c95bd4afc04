"""Text-only batches under ZeRO-3 / FSDP run the vision tower on a dummy image (they would hang the
other processes otherwise) and train exactly as without it; the connector stage reports its optimizer
state summed over ZeRO-3 processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
import torch
from helpers import REPO, accelerate_command, cli_stage, launch_env, save_mixed_rows

from skywork_rl.trainers.vision_batches import (
    VisionInStep,
    dummy_image,
    keep_vision_in_step,
    mixes_image_and_text_rows,
    text_only_rows,
)

VISION = ("model.vision_tower.", "model.visual.", "model.vision_model.")


def _images(*counts: int | None) -> datasets.Dataset:
    from PIL import Image

    picture = Image.new("RGB", (4, 4))
    return datasets.Dataset.from_dict(
        {"images": [None if n is None else [picture] * n for n in counts]},
        features=datasets.Features({"images": datasets.Sequence(datasets.Image())}),
    )


def test_text_only_rows_are_found_without_decoding_images():
    assert text_only_rows(_images(1, 0, 2, None, 1)) == [1, 3]
    single = datasets.Dataset.from_dict({"image": [None, "x.png"]})
    assert text_only_rows(single) == [0]
    assert text_only_rows(datasets.Dataset.from_dict({"prompt": ["a", "b"]})) == [0, 1]
    assert text_only_rows(_images(1, 0, 0).select([2, 0])) == [0]  # after a selection, in its order


def test_vision_is_kept_in_step_only_when_sharded_parameters_meet_mixed_data(tiny_internvl, monkeypatch):
    from skywork_rl.families.parts import load_model_and_processor

    model, processor = load_model_and_processor(str(tiny_internvl))
    trainer = SimpleNamespace(args=None, processing_class=processor, model=model)
    mixed = {"data.train": _images(1, 0, 1)}
    assert mixes_image_and_text_rows(mixed)
    assert keep_vision_in_step(trainer, mixed) is None  # not sharded: DDP runs every rank's own forward
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    # Every process does the same when no row, or every row, has an image.
    same = {"data.train": _images(1, 2), "data.eval": _images(0, 0)}
    assert not mixes_image_and_text_rows(same) and keep_vision_in_step(trainer, same) is None
    assert isinstance(keep_vision_in_step(trainer, mixed), VisionInStep)
    assert mixes_image_and_text_rows({"data.train": _images(1, 1).to_iterable_dataset()})  # a stream: maybe


def _text_batch(processor) -> dict:
    batch = processor.tokenizer(
        ["What is 2 + 2? The answer is 4.", "hi"], return_tensors="pt", padding=True, padding_side="right"
    )
    batch = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return batch


def _forward_and_grads(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    model.zero_grad()
    out = model(**batch)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), out.loss.detach(), grads


@pytest.mark.parametrize("arch", ["internvl", "qwen2_5_vl", "paligemma"])
def test_text_only_batch_runs_the_vision_tower_and_trains_exactly_as_without_it(tiny_model_dir, arch):
    from skywork_rl.families.capabilities import is_prefix_lm
    from skywork_rl.families.parts import load_model_and_processor

    model, processor = load_model_and_processor(str(tiny_model_dir[arch]))
    batch = _text_batch(processor)
    if is_prefix_lm(model):  # PaliGemma's text-only SFT rows: its causal suffix (`SuffixCompletions`)
        batch["token_type_ids"] = torch.ones_like(batch["input_ids"])
    logits, loss, grads = _forward_and_grads(model, batch)
    assert not any(n.startswith(VISION) for n in grads)  # no image: the tower never ran

    calls: list[int] = []
    for name, module in model.named_modules():
        if f"{name}." in VISION:
            module.register_forward_hook(lambda *args: calls.append(1))
    VisionInStep(dummy_image(processor), text_token_type=int(is_prefix_lm(model))).install(model)
    kept_logits, kept_loss, kept_grads = _forward_and_grads(model, batch)

    assert calls == [1]  # the tower ran, as on a process whose batch has images
    assert kept_logits.shape == logits.shape  # cut back to the batch TRL built
    attended = batch["attention_mask"].bool()
    torch.testing.assert_close(kept_logits[attended], logits[attended], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(kept_loss, loss, atol=1e-6, rtol=1e-6)
    vision = {n for n in kept_grads if n.startswith(VISION)}
    assert vision and all(kept_grads[n].abs().max() == 0 for n in vision)  # backward ran through it: zeros
    for name, grad in grads.items():  # the text rows train exactly as before
        torch.testing.assert_close(kept_grads[name], grad, atol=1e-6, rtol=1e-4)


def test_batches_with_images_and_generation_are_untouched(tiny_internvl):
    from PIL import Image

    from skywork_rl.families.parts import load_model_and_processor

    model, processor = load_model_and_processor(str(tiny_internvl))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image = Image.new("RGB", (32, 32), (200, 30, 30))
    batch = dict(processor(images=[[image]], text=[text], return_tensors="pt"))
    prompt = _text_batch(processor)
    prompt.pop("labels")
    with torch.no_grad():
        plain = model(**batch).logits
        generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
        VisionInStep(dummy_image(processor)).install(model)
        assert torch.equal(model(**batch).logits, plain)
        assert torch.equal(model.generate(**prompt, max_new_tokens=4, do_sample=False), generated)


def _mixed_sft_rows(source: Path, out: Path) -> Path:
    """The synthetic SFT rows in blocks of two image rows then two text-only rows (no image, no placeholder).

    Read in order (``train_sampling_strategy: sequential``) with 2 rows per process, accelerate gives
    process r the batches r, r + 2, ...: process 0 only ever gets image rows, process 1 only text-only.
    """
    return save_mixed_rows(source, out, images=2, text_only=2)


def _launch(stage: str, recipe: str, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`skywork-rl stage` under recipes/accelerate/zero3.yaml on 2 CPU processes; a hang is killed
    (the whole process group) after `timeout` seconds and fails the test."""
    command = accelerate_command("zero3.yaml", *cli_stage(stage, recipe, *args))
    process = subprocess.Popen(
        command,
        env=launch_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        stdout, stderr = process.communicate()
        pytest.fail(f"{stage} under ZeRO-3 still running after {timeout} s (hung?):\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


COMMON = ["--training.report_to=[]"]


@pytest.mark.slow
def test_zero3_sft_trains_when_one_process_gets_text_only_batches_and_the_other_images(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    """Issue 21: R1V3's cold-start data mixes image and text-only rows and its SFT runs under ZeRO-3.
    Before the fix the trainer refused the data (without the refusal, process 1 would hang)."""
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")
    from transformers import AutoModelForImageTextToText

    mixed = _mixed_sft_rows(synthetic_dataset_dir, tmp_path / "mixed")
    out = tmp_path / "sft"
    steps = 3
    args = [
        *COMMON,
        f"--model.name_or_path={tiny_internvl}",
        f"--data.train={mixed}",
        f"--training.output_dir={out}",
        f"--training.max_steps={steps}",
        f"--training.save_steps={steps}",
        "--training.logging_steps=1",
        "--training.per_device_train_batch_size=2",
        "--training.train_sampling_strategy=sequential",
    ]
    ran = _launch("sft", "sft.yaml", args)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "the vision tower runs on a dummy image" in ran.stderr  # process 1's text-only batches
    assert json.loads((out / "stage.json").read_text())["status"] == "complete"
    state = json.loads((out / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == steps and all(0 < loss < 20 for loss in losses)
    saved = dict(AutoModelForImageTextToText.from_pretrained(out).named_parameters())
    initial = dict(AutoModelForImageTextToText.from_pretrained(tiny_internvl).named_parameters())
    assert any(not saved[k].equal(initial[k]) for k in initial if "language_model" in k)
    assert all(
        saved[k].equal(initial[k]) for k in initial if "vision_tower" in k
    )  # frozen, as the recipe says


@pytest.mark.slow
def test_zero3_connector_stage_sums_its_optimizer_state_over_processes(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")
    out = tmp_path / "connector"
    connector = [
        *COMMON,
        f"--model.name_or_path={tiny_internvl}",
        "--training.save_strategy=no",
        f"--data.train={synthetic_dataset_dir}",
        f"--training.output_dir={out}",
        "--training.max_steps=2",
    ]
    # The recipe balances the miniature's task; these rows are the demo set's three tasks.
    domains = "{synthetic/count_shapes: 1, synthetic/digit_arithmetic: 1, synthetic/tallest_bar: 1}"
    ran = _launch(
        "connector", "connector.yaml", [*connector, f"--mix.proportions={domains}", "--mix.total=12"]
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    metrics = json.loads((out / "stage.json").read_text())["metrics"]
    n = metrics["connector/trainable_params"]
    # Adam's two float32 moments per connector weight, in partitions over the 2 processes (plus padding
    # and step counters): one process holds about half.
    assert 8 * n <= metrics["connector/optimizer_state_bytes"] <= 8 * n + 1024
    assert (
        metrics["connector/optimizer_state_bytes_per_process"]
        <= 0.6 * metrics["connector/optimizer_state_bytes"]
    )


@pytest.mark.slow
def test_zero3_grpo_trains_when_one_process_gets_a_text_only_prompt_and_the_other_an_image(
    tiny_internvl, synthetic_dataset_dir, tmp_path
):
    """GRPO's loss forwards (and any reference-model forward) take the same dummy path as SFT's. Before
    the fix the trainer refused the data; without the refusal TRL's image gather for its logs crashed."""
    pytest.importorskip("deepspeed", reason="DeepSpeed not installed (pip install 'skywork-rl[deepspeed]')")

    # image, text-only, image, ...: unshuffled, one prompt per process
    mixed = save_mixed_rows(synthetic_dataset_dir, tmp_path / "mixed", images=1, text_only=1)
    out = tmp_path / "grpo"
    args = [
        *COMMON,
        f"--model.name_or_path={tiny_internvl}",
        f"--data.train={mixed}",
        f"--training.output_dir={out}",
        "--training.max_steps=2",
        "--training.save_strategy=no",
        "--training.logging_steps=1",
        "--training.per_device_train_batch_size=4",
        "--training.max_completion_length=8",
        "--training.shuffle_dataset=false",
    ]
    ran = _launch("grpo", "grpo.yaml", args)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "the vision tower runs on a dummy image" in ran.stderr
    # TRL gathers images for its completion logs only where a batch has them: off on mixed data.
    assert "training.log_multimodal turned off" in ran.stderr
    assert json.loads((out / "stage.json").read_text())["status"] == "complete"
