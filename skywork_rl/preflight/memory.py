"""Memory arithmetic behind `skywork-rl preflight`: bytes per GPU, per host and on disk.

Every figure is an estimate from a stated formula; `preflight` prints them next to what the hardware
has. Sources and choices:

* Model states (Rajbhandari et al. 2020, "ZeRO", section 3 and Figure 1): mixed-precision Adam keeps
  2 bytes/param of bf16 weights, 2 of bf16 gradients and K = 12 of optimizer state (fp32 master
  weights, Adam's momentum and variance). ZeRO-1 shards the 12 over the N processes, ZeRO-2 also the
  gradients, ZeRO-3 also the weights. Frozen parameters count for weights only. Offload moves the
  optimizer state (and fp32 gradients, 4 bytes/param) or the ZeRO-3 weight shards to host memory.
  Plain DDP (no DeepSpeed) runs torch's AdamW on the bf16 parameters: 2 + 2 + 4 bytes, unsharded.
* ZeRO-3 gathers the layer it runs and prefetches the next one: 2 decoder layers of bf16 weights (ours).
* Activations with gradient checkpointing (HF checkpoints each decoder layer): the saved input of every
  layer, L x b x s x h x 2 bytes, plus one layer's activations while it is recomputed for backward.
  That layer's saved tensors are counted as in Korthikanti et al. 2022 ("Reducing Activation
  Recomputation in Large Transformer Models", section 4.1), adapted to GQA and a gated MLP, with
  SDPA/flash attention (no s x s scores): the inputs of both norms and of every linear layer, q/k before
  and after RoPE, the attention output, and the MLP's gate, up, act(gate) and act(gate)*up tensors:
  (7h + 3 kv_dim + 4 I) values per token, 2 bytes each. TRL's loss forward takes the whole micro-batch
  at once (GRPO: `_get_per_token_logps_and_entropies` with batch_size = the micro-batch; DPO/MPO: chosen
  and rejected concatenated), so b is per_device_train_batch_size (x2 for preference pairs). TRL's
  fused LM head never materialises the (b, s, vocab) logits, so they are not counted.
* A trained vision tower keeps its activations too (HF checkpoints each ViT layer with the LLM's):
  tiles x tokens per tile per image (InternVL: 13 tiles x 1025 tokens), counted like a decoder layer
  (`shapes.VisionShape`: 8h + 2I values per token per layer, ours). A frozen tower saves nothing.
* The generation batch (per_device_train_batch_size x steps_per_generation samples per process) stays
  on the GPU with its pixel values for the whole generation (TRL buffers it): the processor's values,
  cast to bf16 under DeepSpeed (Trainer._prepare_input), float32 otherwise.
* Judges held for scoring: the `verifier` reward's judge (transformers backend) is loaded whole on every
  GPU outside ZeRO-3 (`rewards/verifier.py`); a reward model is placed as TRL places one
  (`rewards/loading.place_for_inference`): sharded and offloaded with the policy under ZeRO-3 when it is
  a text model, a full copy per GPU when it is a VLM (its forwards differ between ranks) or under
  ZeRO-0/1/2 and DDP.
* vLLM (one engine per tensor-parallel group of GPUs): its weight shard (all bf16 weights / TP), the KV
  cache of one sequence at max_model_len (vLLM refuses to start without it): 2 (K, V) x layers x
  KV heads per GPU x head_dim x 2 bytes per token, KV heads replicated when TP > KV heads; plus 4 GB of
  CUDA graphs and profiling activations (ours; TRL caps max_num_batched_tokens at 4096 in colocate mode).
  Asleep (sleep mode level 2, as TRL uses it) it holds about 1 GB (ours). Whatever the engine's share
  leaves after weights and overhead is its KV cache: at full length (prompt + max_completion_length)
  it runs that many sequences at once out of the rollouts it is given (colocated: per_device_train_batch_size
  x steps_per_generation x TP per engine); below KV_CONCURRENCY_WARN_SHARE of them preflight warns
  (rollouts then run in waves and dominate step time).
* 3 GB per GPU for the CUDA context, NCCL buffers and allocator fragmentation (ours).
"""

from __future__ import annotations

from dataclasses import dataclass

from skywork_rl.preflight.shapes import ImageCost, TextShape, VisionShape

GB = 10**9
BF16 = 2
ADAM_STATE_BYTES = 12  # fp32 master weights + Adam momentum + variance (ZeRO's K)
VLLM_OVERHEAD_BYTES = 4 * GB
VLLM_ASLEEP_BYTES = 1 * GB
GPU_RESERVE_BYTES = 3 * GB
# ours: warn when the colocated engine's KV cache holds fewer than this share of its rollouts at once.
KV_CONCURRENCY_WARN_SHARE = 0.25
# SSBGRPOTrainer keeps TRL's processor output as it is (float32 pixel values) on the host.
SSB_PIXEL_BYTES = 4


@dataclass(frozen=True)
class Sharding:
    """How the training state is laid out: ZeRO stage (0 = none), world size, offloads."""

    label: str
    world: int
    zero_stage: int = 0
    deepspeed: bool = False
    offload_optimizer: bool = False
    offload_param: bool = False
    save_16bit_model: bool = True


@dataclass(frozen=True)
class ModelStates:
    """Per-GPU bytes of weights, gradients, optimizer state and ZeRO-3 gathers; per-process host bytes."""

    weights: int
    grads: int
    optimizer: int
    gather: int
    host: int


def model_states(total: int, trainable: int, layer: int, sh: Sharding) -> ModelStates:
    """Bytes of one rank's training state (see the module docstring for the formulas)."""
    n = max(sh.world, 1)
    if not sh.deepspeed:
        return ModelStates(BF16 * total, BF16 * trainable, 2 * BF16 * trainable, 0, 0)
    weights = BF16 * total // n if sh.zero_stage == 3 else BF16 * total
    grads = BF16 * trainable // n if sh.zero_stage >= 2 else BF16 * trainable
    optimizer = ADAM_STATE_BYTES * trainable // n if sh.zero_stage >= 1 else ADAM_STATE_BYTES * trainable
    host = 0
    if sh.offload_optimizer:
        host += optimizer + 4 * trainable // n  # optimizer state and fp32 gradient partitions
        optimizer, grads = 0, 0  # only reduce buckets stay on the GPU (inside the reserve)
    if sh.offload_param and sh.zero_stage == 3:
        host += weights
        weights = 0
    gather = 2 * layer * BF16 if sh.zero_stage == 3 else 0
    return ModelStates(weights, grads, optimizer, gather, host)


def layer_activation_values(text: TextShape) -> int:
    """Values one decoder layer saves per token for its backward (7h + 3 kv_dim + 4 I)."""
    return 7 * text.hidden + 3 * text.kv_dim + 4 * text.intermediate


def activation_bytes(text: TextShape, batch: int, seq: int, checkpointing: bool) -> int:
    """Peak activation bytes of one micro-batch of `batch` sequences of `seq` tokens."""
    layer = batch * seq * layer_activation_values(text) * BF16
    if not checkpointing:
        return text.layers * layer
    return text.layers * batch * seq * text.hidden * BF16 + layer


def vision_activation_bytes(vision: VisionShape, images: int, checkpointing: bool) -> int:
    """Activation bytes a trained vision tower keeps for `images` images (every tile of each)."""
    tokens = images * vision.tokens_per_image
    layer = tokens * vision.layer_activation_values() * BF16
    if not checkpointing:
        return vision.layers * layer
    return vision.layers * tokens * vision.hidden * BF16 + layer


def pixel_bytes(image: ImageCost | None, images: int, deepspeed: bool) -> int:
    """Pixel values of `images` images as the trainer holds them on the GPU (bf16 under DeepSpeed)."""
    return image.pixel_values * images * (BF16 if deepspeed else 4) if image else 0


def kv_sequences_at_once(
    budget: int, weights: int, text: TextShape, tp: int, sequence_tokens: int
) -> tuple[int, int]:
    """(KV cache tokens, full-length sequences at once) of one engine GPU's `budget` bytes."""
    tokens = max(budget - weights - VLLM_OVERHEAD_BYTES, 0) // kv_bytes_per_token(text, tp)
    return tokens, tokens // max(sequence_tokens, 1)


def scoring_forward_bytes(text: TextShape, batch: int, seq: int) -> int:
    """Working memory of an inference forward (no autograd): one decoder layer at a time holds the
    residual stream and the normed input (2h) and the MLP's gate, up and their product (3I) per token
    (ours)."""
    return batch * seq * (2 * text.hidden + 3 * text.intermediate) * BF16


def kv_bytes_per_token(text: TextShape, tp: int) -> int:
    """KV cache bytes per token on one GPU of a tensor-parallel group of `tp`."""
    kv_heads_per_gpu = max(1, text.kv_heads // tp)
    return 2 * text.layers * kv_heads_per_gpu * text.head_dim * BF16


def vllm_engine_bytes(total_params: int, text: TextShape, tp: int, max_model_len: int) -> tuple[int, int]:
    """(weight shard, KV cache for one max_model_len sequence) on one GPU of a vLLM engine."""
    return BF16 * total_params // tp, kv_bytes_per_token(text, tp) * max_model_len


def vllm_tp_problem(text: TextShape, tp: int) -> str | None:
    """Why vLLM refuses this tensor-parallel size for the model, or None.

    vLLM shards attention heads evenly (heads % TP == 0) and KV heads either evenly (KV % TP == 0) or,
    when TP exceeds them, by replication (TP % KV == 0).
    """
    if tp < 1:
        return f"tensor_parallel_size {tp} must be >= 1"
    if text.heads % tp:
        return f"{text.heads} attention heads do not divide by tensor_parallel_size {tp}"
    if text.kv_heads % tp and tp % text.kv_heads:
        return f"{text.kv_heads} KV heads neither divide by nor divide tensor_parallel_size {tp}"
    return None


def valid_tp_sizes(text: TextShape, limit: int) -> list[int]:
    return [tp for tp in range(1, limit + 1) if vllm_tp_problem(text, tp) is None]


def checkpoint_bytes(total: int, trainable: int, sh: Sharding, extra: int = 0) -> int:
    """Disk bytes of one Trainer checkpoint (all ranks together).

    DeepSpeed: the bf16 weights the Trainer saves (under ZeRO-3 only with the 16-bit gather) plus the
    ZeRO optimizer partitions (12 bytes per trainable parameter); ZeRO-0/1/2 also store the bf16
    module state in `mp_rank_00_model_states.pt`. DDP: weights plus AdamW's two bf16 states.
    `extra`: what the trainer adds (the Selective Sample Buffer of every rank).
    """
    if not sh.deepspeed:
        return BF16 * total + 2 * BF16 * trainable + extra
    weights = BF16 * total if (sh.zero_stage < 3 or sh.save_16bit_model) else 0
    module_states = BF16 * total if sh.zero_stage < 3 else 0
    return weights + module_states + ADAM_STATE_BYTES * trainable + extra


def ssb_sample_bytes(
    prompt_tokens: int,
    completion_tokens: int,
    image: ImageCost | None,
    images: int,
    *,
    completion_float_fields: int,
) -> int:
    """Host bytes of one buffered GRPO sample.

    int64 ids and attention masks for prompt and completion, `completion_float_fields` float32 values
    per completion token (old log-probs; vLLM's sampling log-probs and importance ratios; reference
    log-probs when beta > 0) and the image tensors as the processor returned them (float32).
    """
    tokens = (prompt_tokens + completion_tokens) * 16 + completion_tokens * 4 * completion_float_fields
    pixels = image.pixel_values * SSB_PIXEL_BYTES * images if image else 0
    return tokens + pixels


def ssb_held_samples(
    capacity: int, max_age: int | None, per_device: int, grad_accum: int, steps_per_generation: int
) -> tuple[int, str]:
    """Most samples one process's buffer holds: its capacity, or fewer when `max_age` evicts first.

    A process pushes at most per_device x steps_per_generation samples per generation, one generation
    every steps_per_generation / gradient_accumulation_steps optimizer steps, and drops samples more
    than max_age optimizer steps old before each draw.
    """
    per_generation = per_device * steps_per_generation
    if max_age is None:
        return capacity, f"ssb_capacity {capacity}"
    if steps_per_generation >= grad_accum:
        generations = max_age * grad_accum // steps_per_generation + 1
    else:
        generations = (max_age + 1) * -(-grad_accum // steps_per_generation)
    by_age = generations * per_generation
    if by_age < capacity:
        return by_age, f"{generations} generations x {per_generation} within ssb_max_age {max_age}"
    return capacity, f"ssb_capacity {capacity}"


def gb(value: float) -> str:
    """Bytes as GB (10^9), the unit GPU and disk sizes are sold in."""
    if value >= 1000 * GB:
        return f"{value / 1000 / GB:.2f} TB"
    if value >= GB:
        return f"{value / GB:.1f} GB"
    return f"{value / 10**6:.1f} MB"


def parse_size(text: str) -> int:
    """'80GB', '80 GiB', '1.5TB', '700G' -> bytes (GB = 10^9, GiB = 2^30)."""
    units = {"": GB, "G": GB, "GB": GB, "GIB": 2**30, "T": 1000 * GB, "TB": 1000 * GB, "TIB": 2**40}
    units.update({"M": 10**6, "MB": 10**6, "MIB": 2**20})
    cleaned = text.strip().upper().replace(" ", "")
    number = cleaned.rstrip("ABGIMT")
    unit = cleaned[len(number) :]
    try:
        return int(float(number) * units[unit])
    except (KeyError, ValueError):
        raise ValueError(f"cannot read size {text!r}: use e.g. 80GB, 80GiB, 1TB") from None
