"""The families whose inputs TRL's trainers get wrong, as `skywork_rl.trainers.family_inputs` fixes them:
PaliGemma (a prefix-LM) trains on its own prefix/suffix layout and its GRPO completions are scored
causally; PaliGemma's and Mistral 3's processors tokenize GRPO prompts of different lengths."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from trl import GRPOTrainer
from trl.data_utils import prepare_multimodal_messages

from skywork_rl.families.parts import load_model_and_processor
from skywork_rl.miniature.synthetic import build_dataset
from skywork_rl.stages.mpo import SkyworkMPOConfig
from skywork_rl.stages.sft import SkyworkSFTConfig
from skywork_rl.trainers.mpo import MPOTrainer
from skywork_rl.trainers.sft import SkyworkSFTTrainer
from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

ARGS = {"max_steps": 1, "use_cpu": True, "bf16": False, "report_to": [], "save_strategy": "no"}


@pytest.fixture(scope="module")
def rows():
    # Prompts of different lengths: what a batch of real rows looks like.
    return build_dataset(3, seed=1).select_columns(["prompt", "completion", "images"])


@pytest.fixture(scope="module")
def paligemma(tiny_model_dir):
    return load_model_and_processor(str(tiny_model_dir["paligemma"]), dtype="float32")


def _text(message_list):
    return message_list[0]["content"][0]["text"]


def _native(processor, rows, suffixes):
    """PaliGemma's own fine-tuning encoding: `processor(text=prefix, images, suffix=answer)`."""
    prefixes = [
        processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows
    ]
    return processor(
        text=prefixes, images=[r["images"] for r in rows], suffix=suffixes, padding=True, return_tensors="pt"
    )


def _unpadded(batch, key, i):
    return batch[key][i][batch["attention_mask"][i].bool()]


def test_paligemma_sft_and_mpo_batches_are_paligemmas_own_prefix_suffix_encoding(paligemma, rows, tmp_path):
    model, processor = paligemma
    examples = [dict(r) for r in rows]
    sft = SkyworkSFTTrainer(
        model=model,
        args=SkyworkSFTConfig(output_dir=str(tmp_path / "sft"), max_length=None, **ARGS),
        train_dataset=rows,
        processing_class=processor,
    )
    batch = sft.data_collator([dict(e) for e in examples])
    native = _native(processor, examples, [_text(e["completion"]) for e in examples])
    for i in range(len(examples)):
        for key in ("input_ids", "token_type_ids", "labels"):
            assert torch.equal(_unpadded(batch, key, i), _unpadded(native, key, i)), (key, i)

    pairs = [
        {
            "prompt": e["prompt"],
            "chosen": e["completion"],
            "rejected": rows[(i + 1) % 3]["completion"],
            "images": e["images"],
        }
        for i, e in enumerate(examples)
    ]
    mpo = MPOTrainer(
        model=model,
        args=SkyworkMPOConfig(output_dir=str(tmp_path / "mpo"), max_length=None, **ARGS),
        train_dataset=Dataset.from_list(pairs),
        processing_class=processor,
    )
    batch = mpo.data_collator([dict(p) for p in pairs])
    chosen = _native(processor, pairs, [_text(p["chosen"]) for p in pairs])
    for i in range(len(pairs)):  # the first half of an MPO batch is prompt + chosen
        completion = batch["completion_mask"][i].bool()
        suffix = chosen["token_type_ids"][i].bool()
        assert torch.equal(_unpadded(batch, "input_ids", i), _unpadded(chosen, "input_ids", i))
        assert torch.equal(batch["input_ids"][i][completion], chosen["input_ids"][i][suffix])
        assert torch.equal(
            batch["token_type_ids"][i][completion], torch.ones(int(completion.sum()), dtype=torch.long)
        )


def test_a_causal_family_keeps_trls_collator_processor(tiny_model_dir, rows, tmp_path):
    model, processor = load_model_and_processor(str(tiny_model_dir["gemma3"]), dtype="float32")
    trainer = SkyworkSFTTrainer(
        model=model,
        args=SkyworkSFTConfig(output_dir=str(tmp_path / "sft"), max_length=None, **ARGS),
        train_dataset=rows,
        processing_class=processor,
    )
    assert trainer.data_collator.processor is processor


def _grpo(model, processor, rows, out):
    return SSBGRPOTrainer(
        model=model,
        reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
        args=SkyworkGRPOConfig(output_dir=str(out), per_device_train_batch_size=2, num_generations=2, **ARGS),
        train_dataset=rows.select_columns(["prompt", "images"]),
        processing_class=processor,
    )


def test_paligemma_grpo_scores_each_completion_token_without_seeing_the_later_ones(paligemma, rows, tmp_path):
    model, processor = paligemma
    trainer = _grpo(model, processor, rows, tmp_path / "grpo")
    prompt = processor(
        text=[processor.apply_chat_template(rows[0]["prompt"], add_generation_prompt=True, tokenize=False)],
        images=[rows[0]["images"]],
        return_tensors="pt",
    )
    completion = processor.tokenizer(["<think>\nI count 5.\n</think>"], return_tensors="pt")["input_ids"]
    changed = completion.clone()
    changed[0, -1] = completion[0, 0]
    n = completion.shape[1]

    def logps(score, tokens):
        ids = torch.cat([prompt["input_ids"], tokens], dim=1)
        with (
            torch.no_grad()
        ):  # the inputs as TRL passes them: token types extended with 0 over the completion
            out, _, _ = score(
                model,
                ids,
                torch.ones_like(ids),
                n,
                pixel_values=prompt["pixel_values"],
                token_type_ids=torch.cat([prompt["token_type_ids"], torch.zeros_like(tokens)], dim=1),
                labels=prompt["labels"],  # ride along in TRL's forward kwargs
                num_images=[1],
            )
        return out[0, :-1]  # every token but the changed last one

    def ours(*a, **k):
        return trainer._get_per_token_logps_and_entropies(*a, **k)

    def trls(*a, **k):
        k.pop("labels")
        return GRPOTrainer._get_per_token_logps_and_entropies(trainer, *a, **k)

    torch.testing.assert_close(logps(ours, completion), logps(ours, changed), rtol=0, atol=0)
    # Without the fix, each completion token's log-prob depends on the tokens after it.
    assert not torch.allclose(logps(trls, completion), logps(trls, changed))


@pytest.mark.parametrize("arch", ["paligemma", "mistral3", "smolvlm"])
def test_grpo_tokenizes_prompts_of_different_lengths_as_each_alone(arch, tiny_model_dir, rows, tmp_path):
    model, processor = load_model_and_processor(str(tiny_model_dir[arch]), dtype="float32")
    trainer = _grpo(model, processor, rows, tmp_path / "grpo")
    # As TRL hands them over: the images placed into the messages.
    prompts = [prepare_multimodal_messages(r["prompt"], images=r["images"]) for r in rows]
    ids, images, fields = trainer._tokenize_prompts(prompts)
    assert len({len(i) for i in ids}) > 1 and "labels" not in fields
    for i, row in enumerate(rows):
        text = processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        alone = processor(text=[text], images=[row["images"]], return_tensors="pt")
        assert ids[i] == alone["input_ids"][0].tolist()
        if "token_type_ids" in fields:
            assert fields["token_type_ids"][i] == alone["token_type_ids"][0].tolist()
    assert len(images) == len(fields["pixel_values"]) == len(rows)
