"""Model FLOPs of a VLM step, counted at each forward call, and MFU against the card's bf16 peak.

The count is the model's arithmetic (MFU's numerator, PaLM appendix B), not what the kernels ran:
recomputation under gradient checkpointing is not counted, padding is not counted, and
norms, biases, activations and softmax are left out (< 1% at these sizes). Per forward call, for
each row r with ``q_r`` real new tokens attending to ``c_r`` real tokens (prompt, cache and the
new ones; from the call's ``attention_mask``):

    LLM    2 * N_llm * q_r  +  4 * L * d_attn * (q_r * (c_r - q_r) + q_r * (q_r + 1) / 2)
           (matmuls; causal attention: QK^T and AV, 2 FLOPs per multiply-add, each new token
           attends to the real tokens before it and itself; the LM head's 2 * V * d per token runs on
           the labelled positions only under TRL's fused head, else on ``logits_to_keep`` of them)
    vision per 448-px tile of P = (448/14)^2 + 1 = 1025 tokens (InternViT, bidirectional):
           2 * N_vit * P  +  2 * N_patch * (P - 1)  +  4 * L_v * d_v * P^2,  plus the projector
           2 * N_proj * P_out with P_out = (P - 1) * downsample^2 = 256 tokens per tile
    N_llm  = L * (d * d_attn + 2 * d * d_kv + d_attn * d + 3 * d * d_ff) + V * d   (the LM head;
           the embedding lookup does no matmul)
    N_vit  = L_v * (4 * d_v^2 + 2 * d_v * d_ff_v),  N_patch = 3 * patch^2 * d_v,
    N_proj = (d_v / downsample^2) * d + d * d

A no-grad call (generation: prefill and each decode step) counts the forward once: 2 * N per token.
A call under autograd (a training forward) adds the backward, per part (vision tower, connector,
LLM, in that order): activation gradients when the part or one before it trains, weight gradients
when it trains. A fully trained part counts 3x (6 * N per token); the LLM in front of a trained
connector with the LLM frozen counts 2x; the frozen vision tower of the stages' default
``trainable: [llm, connector]`` counts 1x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# bf16 dense tensor-core peak (no sparsity) per GPU, from NVIDIA's data sheets; the first name
# contained in `torch.cuda.get_device_name()` wins, so the specific names come first.
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    "GH200": 989.0,
    "H200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,  # SXM4 and PCIe, 40 and 80 GB
    "L40S": 362.0,
    "L4": 121.0,
}


def peak_tflops(device_name: str) -> float | None:
    """The bf16 dense peak of a card by its CUDA name, or None when the table does not know it."""
    return next((tflops for name, tflops in PEAK_BF16_TFLOPS.items() if name in device_name), None)


@dataclass(frozen=True)
class TextDims:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @property
    def matmul_params(self) -> int:
        """N_llm without the LM head (per token of every position)."""
        d, d_attn, d_kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return self.layers * (d * d_attn + 2 * d * d_kv + d_attn * d + 3 * d * self.intermediate)

    @property
    def head_params(self) -> int:
        return self.vocab * self.hidden


@dataclass(frozen=True)
class VisionDims:
    layers: int
    hidden: int
    intermediate: int
    patch: int
    image_size: int
    downsample: float
    text_hidden: int

    @property
    def tokens_per_tile(self) -> int:
        return (self.image_size // self.patch) ** 2 + 1  # patches + CLS

    @property
    def projected_tokens_per_tile(self) -> int:
        return round((self.tokens_per_tile - 1) * self.downsample**2)

    @property
    def matmul_params(self) -> int:
        """N_vit: the encoder layers' matmul weights (every token, CLS included)."""
        d, f = self.hidden, self.intermediate
        return self.layers * (4 * d * d + 2 * d * f)

    @property
    def patch_params(self) -> int:
        """N_patch: the patch-embedding convolution (every patch; the CLS token is not convolved)."""
        return 3 * self.patch**2 * self.hidden

    @property
    def projector_params(self) -> int:
        wide = round(self.hidden / self.downsample**2)
        return wide * self.text_hidden + self.text_hidden * self.text_hidden

    def tower_flops_per_tile(self) -> int:
        p = self.tokens_per_tile
        return (
            2 * self.matmul_params * p
            + 2 * self.patch_params * (p - 1)
            + 4 * self.layers * self.hidden * p * p
        )

    def projector_flops_per_tile(self) -> int:
        return 2 * self.projector_params * self.projected_tokens_per_tile


def _pair(value: Any) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def text_dims(config: Any) -> TextDims:
    """The LLM's dims from a VLM config (``text_config``) or a plain LLM config."""
    text = getattr(config, "text_config", None) or config
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return TextDims(
        layers=text.num_hidden_layers,
        hidden=text.hidden_size,
        heads=heads,
        kv_heads=getattr(text, "num_key_value_heads", None) or heads,
        head_dim=head_dim,
        intermediate=text.intermediate_size,
        vocab=text.vocab_size,
    )


def vision_dims(config: Any) -> VisionDims | None:
    """InternViT's dims (InternVL configs); None for other vision towers, whose FLOPs are not counted."""
    if getattr(config, "model_type", None) != "internvl":
        return None
    vision = config.vision_config
    return VisionDims(
        layers=vision.num_hidden_layers,
        hidden=vision.hidden_size,
        intermediate=vision.intermediate_size,
        patch=_pair(vision.patch_size),
        image_size=_pair(vision.image_size),
        downsample=config.downsample_ratio,
        text_hidden=config.text_config.hidden_size,
    )


def llm_forward_flops(
    dims: TextDims, real_new: list[int], real_context: list[int], head_tokens: list[int]
) -> int:
    """Forward FLOPs of one LLM call: per row, real new tokens, real tokens attended to, LM-head rows."""
    d_attn = dims.heads * dims.head_dim
    flops = 0
    for q, c, h in zip(real_new, real_context, head_tokens, strict=True):
        attention = 4 * dims.layers * d_attn * (q * (c - q) + q * (q + 1) // 2)
        flops += 2 * dims.matmul_params * q + 2 * dims.head_params * h + attention
    return flops


def head_positions(kwargs: dict[str, Any], real_new: list[int]) -> list[int]:
    """Rows the LM head projects, per row of a forward call.

    TRL's fused head (`trl.trainer.utils.add_fused_lm_head`, called as ``model(..., labels=labels,
    fused_lm_head=True)`` by GRPO and DPO/MPO) projects only the positions whose next-token label is
    not -100 (the completion, not the prompt or padding): ``labels[:, 1:]``, or ``shift_labels`` as
    given. Otherwise ``logits_to_keep`` (an int) keeps the last positions, and without it every real
    new token is projected.
    """
    if kwargs.get("fused_lm_head"):
        shifted = kwargs.get("shift_labels")
        if shifted is None and kwargs.get("labels") is not None:
            shifted = kwargs["labels"][:, 1:]
        if shifted is not None:
            return (shifted != -100).sum(dim=1).tolist()
    keep = kwargs.get("logits_to_keep") or 0
    return [min(keep, q) if isinstance(keep, int) and keep > 0 else q for q in real_new]


def train_multipliers(trainable: set[str]) -> dict[str, int]:
    """FLOPs of a training forward per part, in forwards: 1 + activation grads + weight grads."""
    out, upstream = {}, False
    for part in ("vision", "connector", "llm"):
        upstream = upstream or part in trainable
        out[part] = 1 + int(upstream) + int(part in trainable)
    return out


class FlopCounter:
    """Counts model FLOPs of every forward call of a model, per phase and part (vision, connector,
    llm), into the phase that is current.

    Forward pre-hooks on the top-level model and on the vision tower see every call: TRL's training
    forward, and each prefill and decode step of `generate` (which runs the vision tower itself,
    before the prefill: transformers 5 passes the prefill ``mm_encoder_outputs``, and the KV cache as
    ``cache``). Gradient checkpointing re-runs decoder and ViT layers, never these modules' own
    forward, so recomputation is not counted. `trainable` names the parts whose parameters train
    (`skywork_rl.families.parts.set_trainable`).
    """

    def __init__(self, model: Any, trainable: set[str]) -> None:
        self.text = text_dims(model.config)
        self.vision = vision_dims(model.config)
        self.multipliers = train_multipliers(trainable)
        self.phase = "train"
        self.flops: dict[str, dict[str, float]] = {}
        self.tiles: dict[str, int] = {}
        self._handles = [model.register_forward_pre_hook(self._count, with_kwargs=True)]
        tower = getattr(getattr(model, "model", model), "vision_tower", None)
        if tower is not None and self.vision is not None:
            self._handles.append(tower.register_forward_pre_hook(self._count_tiles, with_kwargs=True))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def take(self) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
        """(FLOPs per phase and part, image tiles per phase) since the last `take`."""
        taken = self.flops, self.tiles
        self.flops, self.tiles = {}, {}
        return taken

    def _add(self, part: str, flops: float, training: bool) -> None:
        per_part = self.flops.setdefault(self.phase, {})
        per_part[part] = per_part.get(part, 0.0) + flops * (self.multipliers[part] if training else 1)

    def _count(self, module: Any, args: tuple, kwargs: dict) -> None:
        import torch

        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            return
        training = torch.is_grad_enabled()
        batch, new = input_ids.shape
        mask = kwargs.get("attention_mask")
        if mask is not None and mask.dim() == 2:
            real_context = mask.sum(dim=1).tolist()
            real_new = mask[:, -new:].sum(dim=1).tolist()
        else:  # no mask: every position is real; the cache holds the past (generate's `cache`)
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            past = cache.get_seq_length() if cache is not None else 0
            real_new, real_context = [new] * batch, [past + new] * batch
        head = head_positions(kwargs, real_new)
        self._add("llm", llm_forward_flops(self.text, real_new, real_context, head), training)

    def _count_tiles(self, module: Any, args: tuple, kwargs: dict) -> None:
        import torch

        assert self.vision is not None
        pixels = kwargs.get("pixel_values", args[0] if args else None)
        if pixels is None:
            return
        tiles, training = int(pixels.shape[0]), torch.is_grad_enabled()
        self._add("vision", tiles * self.vision.tower_flops_per_tile(), training)
        self._add("connector", tiles * self.vision.projector_flops_per_tile(), training)
        self.tiles[self.phase] = self.tiles.get(self.phase, 0) + tiles


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the peak (TFLOP/s); None without a peak."""
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / (peak * 1e12)
