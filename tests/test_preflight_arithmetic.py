"""Preflight's arithmetic against figures computed by hand for InternVL3-8B and InternVL3-38B.

The model dims come from the published config.json files, written as fixtures under
tests/fixtures/model_configs (see its README for where each number comes from).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from skywork_rl.preflight import memory as me
from skywork_rl.preflight.shapes import load_shape

CONFIGS = Path(__file__).parent / "fixtures" / "model_configs"


@pytest.fixture(scope="module")
def shapes():
    return {name: load_shape(f"OpenGVLab/InternVL3-{name}-hf", CONFIGS) for name in ("8B", "38B")}


def test_parameter_counts_per_part_match_the_hand_computed_figures(shapes):
    # Qwen2.5-32B (h 5120, 64 layers, 40 heads, 8 KV heads of 128, MLP 27648, vocab 151674, untied):
    #   attention 5120*5120 + 2*5120*1024 + 5120*5120 + q/k/v biases (5120 + 2*1024) = 62,921,728
    #   MLP 3*5120*27648 = 424,673,280; norms 2*5120 -> 487,605,248 per layer, x 64 = 31,206,735,872
    #   embeddings + LM head 2*151674*5120 = 1,553,141,760; final norm 5120 -> 32,759,882,752
    # InternVL connector: LayerNorm(12800) 25,600 + Linear(12800->5120) 65,541,120
    #   + Linear(5120->5120) 26,219,520 = 91,786,240 (the paper's "about 92M")
    # InternViT-6B (h 3200, 45 layers, MLP 12800): 4*3200^2 + 2*3200*12800 + 8*3200 = 122,905,600 per
    #   layer, x 45 = 5,530,752,000; patch embedding 3*14*14*3200 = 1,881,600 and 1025 positions x 3200
    #   = 3,280,000 -> 5,535,913,600 (transformers' meta-device build: 5,536,496,000, 0.01 % apart)
    assert shapes["38B"].params == {
        "vision": 5_535_913_600,
        "connector": 91_786_240,
        "llm": 32_759_882_752,
    }
    # Qwen2.5-7B (h 3584, 28 layers, 28 heads, 4 KV heads, MLP 18944): attention 29,364,736 + MLP
    #   203,685,888 + norms 7,168 = 233,057,792 x 28 = 6,525,618,176; + 2*151674*3584 + 3584
    #   = 7,612,820,992. InternViT-300M (h 1024, 24 layers, MLP 4096): 12,591,104 x 24 + 3,198,912
    #   = 303,838,208. Connector: 8,192 + 14,683,648 + 12,848,640 = 27,540,480.
    assert shapes["8B"].params == {"vision": 303_838_208, "connector": 27_540_480, "llm": 7_612_820_992}


def test_zero_model_states_per_gpu_match_the_zero_paper_formula(shapes):
    s = shapes["38B"]
    total, trainable = s.total_params, s.trainable_params(["llm", "connector"])
    assert (total, trainable) == (38_387_582_592, 32_851_668_992)
    # ZeRO-3 on 4 x 8 GPUs: 2 * 38,387,582,592 / 32 bf16 weights; 2 * 32,851,668,992 / 32 gradients;
    # 12 * 32,851,668,992 / 32 fp32 master weights + Adam moments.
    z3 = me.model_states(total, trainable, 0, me.Sharding("z3", 32, 3, True))
    assert (z3.weights, z3.grads, z3.optimizer) == (2_399_223_912, 2_053_229_312, 12_319_375_872)
    # ZeRO-3 on one 8-GPU node: the optimizer state alone is 12 * 32.85e9 / 8 = 49.3 GB per GPU, and
    # weights + gradients + optimizer 67.1 GB before any activation: full 38B training does not fit.
    one_node = me.model_states(total, trainable, 0, me.Sharding("z3", 8, 3, True))
    assert one_node.optimizer == 49_277_503_488
    assert one_node.weights + one_node.grads + one_node.optimizer == 67_087_316_384
    # Offloading optimizer and parameters leaves nothing persistent on the GPU and puts
    # (12 + 4) * Ψt / 8 + 2 * Ψ / 8 = 65,703,337,984 + 9,596,895,648 bytes per process on the host.
    off = me.model_states(total, trainable, 0, me.Sharding("z3o", 8, 3, True, True, True))
    assert (off.weights, off.grads, off.optimizer, off.host) == (0, 0, 0, 75_300_233_632)
    # ZeRO-2, InternVL3-8B on 8 GPUs: full bf16 weights 2 * 7,944,199,680, sharded grads and Adam.
    s8 = shapes["8B"]
    z2 = me.model_states(
        s8.total_params, s8.trainable_params(["llm", "connector"]), 0, me.Sharding("z2", 8, 2, True)
    )
    assert (z2.weights, z2.grads, z2.optimizer) == (15_888_399_360, 1_910_090_368, 11_460_542_208)


def test_checkpointed_activations_of_one_micro_batch(shapes):
    # 38B, 8 sequences of 16384 completion + 3842 prompt tokens (13 tiles x 256 + 2 image tokens + 512 text):
    #   saved layer inputs 64 * 8 * 20226 * 5120 * 2 bytes = 106,042,490,880
    #   one layer recomputed: 8 * 20226 * (7*5120 + 3*1024 + 4*27648 = 149,504 values) * 2 = 48,381,886,464
    assert me.activation_bytes(shapes["38B"].text, 8, 20226, checkpointing=True) == 154_424_377_344
    # the recipe's fix, 2 sequences: a quarter of it, 38.6 GB
    assert me.activation_bytes(shapes["38B"].text, 2, 20226, checkpointing=True) == 38_606_094_336
    # 8B, 8 x (8192 + 3842): 28 * 8 * 12034 * 3584 * 2 = 19,322,175,488 saved layer inputs, plus
    #   8 * 12034 * (7*3584 + 3*512 + 4*18944 = 102,400 values) * 2 = 19,716,505,600 for one layer
    assert me.activation_bytes(shapes["8B"].text, 8, 12034, checkpointing=True) == 39_038_681_088
    # without checkpointing every layer keeps its activations: 28 x 19,716,505,600
    assert me.activation_bytes(shapes["8B"].text, 8, 12034, checkpointing=False) == 552_062_156_800


def test_vllm_engine_shard_and_kv_cache(shapes):
    s38, s8 = shapes["38B"], shapes["8B"]
    # KV per token on one GPU of TP 4: K and V x 64 layers x 8/4 KV heads x 128 x 2 bytes = 65,536
    assert me.kv_bytes_per_token(s38.text, 4) == 65_536
    weights, kv = me.vllm_engine_bytes(s38.total_params, s38.text, 4, 32768)
    assert (weights, kv) == (19_193_791_296, 2_147_483_648)  # 2 * 38.39e9 / 4; 65,536 * 32768
    # InternVL3-8B alone on a GPU: 2 x 28 x 4 x 128 x 2 = 57,344 bytes per token
    assert me.kv_bytes_per_token(s8.text, 1) == 57_344


def test_tensor_parallel_sizes_that_do_not_divide_the_heads_are_refused(shapes):
    text8 = shapes["8B"].text  # 28 attention heads, 4 KV heads
    problem = me.vllm_tp_problem(text8, 8)
    assert problem is not None and "28 attention heads" in problem
    assert me.valid_tp_sizes(text8, 8) == [1, 2, 4]
    assert me.valid_tp_sizes(shapes["38B"].text, 8) == [1, 2, 4, 8]  # 40 heads, 8 KV heads


def test_selective_sample_buffer_bytes_and_held_samples(shapes):
    # One InternVL sample: 13 tiles x 3 x 448 x 448 float32 = 31,309,824 bytes of pixels; 3842 prompt
    # tokens x 16 (int64 ids + mask) = 61,472; 16384 completion tokens x (16 + 3 float32 log-prob/ratio
    # fields x 4) = 458,752 -> 31,830,048 bytes.
    assert me.ssb_sample_bytes(3842, 16384, shapes["38B"].image, 1, completion_float_fields=3) == 31_830_048
    # R1V2 after preflight: 2 per device, 16 accumulation, 16 steps per generation -> a generation every
    # optimizer step; ssb_max_age 8 keeps 9 generations x 32 samples = 288 of the 1024 capacity.
    assert me.ssb_held_samples(1024, 8, 2, 16, 16)[0] == 288
    # R1V3 38B: 2 per device, 4 accumulation, 16 per generation -> a generation every 4 steps: 3 x 32.
    assert me.ssb_held_samples(1024, 8, 2, 4, 16)[0] == 96
    assert me.ssb_held_samples(64, None, 2, 4, 16)[0] == 64  # no max age: the capacity bounds it


def test_zero3_checkpoint_holds_bf16_weights_and_optimizer_partitions(shapes):
    s = shapes["38B"]
    # 2 * 38,387,582,592 (16-bit gathered weights) + 12 * 32,851,668,992 = 470,995,193,088 (~0.47 TB)
    sharding = me.Sharding("z3", 32, 3, True)
    assert (
        me.checkpoint_bytes(s.total_params, s.trainable_params(["llm", "connector"]), sharding)
        == 470_995_193_088
    )


def test_sizes_parse_in_decimal_and_binary_units():
    assert me.parse_size("80GB") == 80 * 10**9
    assert me.parse_size("80GiB") == 80 * 2**30
    assert me.parse_size("1.5TB") == 1_500 * 10**9
    with pytest.raises(ValueError, match="80GB"):
        me.parse_size("eighty")
