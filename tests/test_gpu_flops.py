"""The GPU benchmark's FLOP accounting (benchmarks/gpu_flops.py) against hand computations and torch's counter."""

from __future__ import annotations

import argparse

import pytest
import torch
from helpers import benchmark_module


def _load(name: str):
    return benchmark_module(name)


def _config_8b():
    from transformers import AutoConfig

    gpu_model = _load("gpu_model")
    config = gpu_model.arch_config("internvl3-8b-hf")
    return AutoConfig.for_model(config.pop("model_type"), **config)


def test_internvl3_8b_flop_constants_match_a_hand_computation():
    flops = _load("gpu_flops")
    text, vision = flops.text_dims(_config_8b()), flops.vision_dims(_config_8b())
    # per layer: q 3584*3584 + k,v 2*3584*512 + o 3584*3584 + MLP 3*3584*18944 = 233,046,016
    assert text.matmul_params == 28 * 233_046_016 == 6_525_288_448
    assert text.head_params == 151_674 * 3584 == 543_599_616
    # ViT: 24 * (4*1024^2 + 2*1024*4096); patch embedding 3*14*14*1024
    assert (vision.matmul_params, vision.patch_params) == (301_989_888, 602_112)
    assert vision.projector_params == 4096 * 3584 + 3584 * 3584 == 27_525_120
    assert (vision.tokens_per_tile, vision.projected_tokens_per_tile) == (1025, 256)
    # a tile: 2 * 301,989,888 * 1025 + 2 * 602,112 * 1024 patches + 4 * 24 * 1024 * 1025^2 attention;
    # projector 2 * 27,525,120 * 256
    assert vision.tower_flops_per_tile() == 619_079_270_400 + 1_233_125_376 + 103_280_640_000
    assert vision.projector_flops_per_tile() == 14_092_861_440
    # one 1000-token sequence, forward: 2 * 7,068,888,064 * 1000 + 4 * 28 * 3584 * (1000 * 1001 / 2)
    assert flops.llm_forward_flops(text, [1000], [1000], [1000]) == 14_137_776_128_000 + 200_904_704_000
    # a decode step: one new token attending to 1000 cached ones and itself; LM head on it
    assert flops.llm_forward_flops(text, [1], [1001], [1]) == 2 * 7_068_888_064 + 4 * 28 * 3584 * 1001


def test_internvl3_8b_config_builds_the_published_model_size_and_the_counted_matmuls():
    """On the meta device (no memory): the model's Linear/Conv weights are exactly what the formula counts."""
    from transformers import AutoModelForImageTextToText

    flops = _load("gpu_flops")
    config = _config_8b()
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(7.94, abs=0.01)

    def weights(module: torch.nn.Module) -> int:
        kinds = (torch.nn.Linear, torch.nn.Conv2d)
        return sum(m.weight.numel() for m in module.modules() if isinstance(m, kinds))

    text, vision = flops.text_dims(config), flops.vision_dims(config)
    assert (
        weights(model.model.language_model) + weights(model.lm_head) == text.matmul_params + text.head_params
    )
    assert weights(model.model.vision_tower) == vision.matmul_params + vision.patch_params
    assert weights(model.model.multi_modal_projector) == vision.projector_params


def test_backward_counts_by_which_parts_train():
    flops = _load("gpu_flops")
    assert flops.train_multipliers({"llm", "connector"}) == {"vision": 1, "connector": 3, "llm": 3}
    assert flops.train_multipliers({"connector"}) == {"vision": 1, "connector": 3, "llm": 2}
    assert flops.train_multipliers({"vision", "connector", "llm"}) == {"vision": 3, "connector": 3, "llm": 3}


def test_peak_table_matches_the_most_specific_card_name():
    flops = _load("gpu_flops")
    assert flops.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert flops.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert flops.peak_tflops("NVIDIA L40S") == 362.0 and flops.peak_tflops("NVIDIA L4") == 121.0
    assert flops.peak_tflops("AMD Instinct MI300X") is None
    assert flops.mfu(989e12, 2.0, 989.0) == 0.5 and flops.mfu(1.0, 1.0, None) is None


def _scaled_args(**overrides) -> argparse.Namespace:
    args = dict(layers=1, hidden=256, vision_layers=1, image_size=112, vocab=2048, max_patches=12)
    args.update(bf16=False, attn="sdpa")
    args.update(overrides)
    return argparse.Namespace(**args)


def test_scaling_down_keeps_the_head_dim_and_the_kv_grouping_where_it_can():
    gpu_model = _load("gpu_model")
    config = gpu_model.scaled(gpu_model.arch_config("internvl3-8b-hf"), _scaled_args(hidden=512))
    text = config["text_config"]
    # 512 / 128 = 4 heads; 7 queries per KV head cannot stay, so 1 KV head; MLP 18944 * 512 / 3584
    assert (text["num_attention_heads"], text["num_key_value_heads"], text["intermediate_size"]) == (
        4,
        1,
        2688,
    )
    assert (
        config["image_seq_length"] == (112 // 14) ** 2 // 4
        and config["vision_config"]["num_hidden_layers"] == 1
    )


def test_counted_forward_flops_equal_torchs_count_less_the_causal_half():
    """torch's FlopCounterMode counts every matmul the forward runs (eager attention: over the full
    square; it does not count CPU SDPA kernels); the benchmark counts causal attention, so the
    difference is 4*L*d_attn*(s^2 - s(s+1)/2)."""
    from PIL import Image
    from torch.utils.flop_counter import FlopCounterMode

    flops, gpu_model = _load("gpu_flops"), _load("gpu_model")
    args = _scaled_args(attn="eager")
    model, processor = gpu_model.random_model(
        gpu_model.scaled(gpu_model.arch_config("internvl3-8b-hf"), args), args
    )
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many squares?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[[Image.new("RGB", (64, 64))]], return_tensors="pt")
    counter = flops.FlopCounter(model, {"llm", "connector"})
    with torch.no_grad(), FlopCounterMode(display=False) as torch_count:
        model(**inputs)
    counted, tiles = counter.take()
    s, dims = inputs["input_ids"].shape[1], counter.text
    causal_half = 2 * dims.layers * dims.heads * dims.head_dim * s * (s - 1)
    assert tiles == {"train": 1}
    assert sum(counted["train"].values()) == torch_count.get_total_flops() - causal_half
    # the same forward under autograd: LLM and connector 3x, the frozen tower 1x
    with torch.enable_grad():
        model(**inputs)
    trained, _ = counter.take()
    assert trained["train"] == {p: v * {"vision": 1}.get(p, 3) for p, v in counted["train"].items()}
    counter.remove()


def test_fused_lm_head_counts_the_head_on_labelled_positions_only():
    """TRL's GRPO/DPO call `model(..., labels=labels, fused_lm_head=True)`: the head projects the
    completion positions (next-token label != -100), not the prompt or padding; the rest of the LLM
    runs on every real token."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    flops = _load("gpu_flops")
    config = Qwen2Config(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = Qwen2ForCausalLM(config)
    add_fused_lm_head(model)
    counter = flops.FlopCounter(model, {"llm"})
    input_ids = torch.randint(0, 512, (2, 10))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, -2:] = 0  # row 1: two padded completion positions
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :6] = -100  # a 6-token prompt, a 4-token completion (TRL: labels[:, :-logits_to_keep])
    with torch.no_grad():
        model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
    counted, _ = counter.take()
    # the head on positions 5..8 predicts labels 6..9: 4 in row 0, 2 in row 1 (its last two are padding)
    expected = flops.llm_forward_flops(counter.text, [10, 8], [10, 8], [4, 2])
    assert counted["train"]["llm"] == expected
    assert expected < flops.llm_forward_flops(counter.text, [10, 8], [10, 8], [10, 8])
    counter.remove()
