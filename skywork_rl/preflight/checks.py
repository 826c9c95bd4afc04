"""The checks `skywork-rl preflight` runs on one stage, as rows of (item, needed, available, verdict).

A training stage (SFT, MPO, GRPO, connector) gets the per-GPU memory of one training step, GRPO's
colocated vLLM engine and its generation phase, the host memory of ZeRO offload and the Selective
Sample Buffer, and its checkpoints' disk use. A data stage generating with vLLM gets vLLM's
tensor-parallel rule and the engine's memory. The formulas are in `skywork_rl.preflight.memory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skywork_rl.preflight import memory as me
from skywork_rl.preflight.layout import Hardware
from skywork_rl.preflight.report import OK, REFUSED, UNCHECKED, WARN, Row, verdict
from skywork_rl.preflight.shapes import ModelShape, layer_params

PROMPT_TEXT_TOKENS = 512  # ours: system prompt + question of a K12/MMMU-style item, images aside


@dataclass(frozen=True)
class Judge:
    """A model a training stage holds for scoring: the `verifier` reward's judge or a reward model."""

    role: str  # verifier | reward model
    name: str
    shape: ModelShape
    backend: str = "transformers"  # verifier: transformers | vllm
    utilization: float = 0.9  # verifier on vLLM: its engine's gpu_memory_utilization
    vlm: bool = False  # reward model: a VLM (a full copy per GPU)


@dataclass(frozen=True)
class Copy:
    """A frozen model held next to the policy: its label and bytes per GPU / per process on the host."""

    label: str
    gpu: int
    host: int = 0


@dataclass
class StageContext:
    """What one stage's checks read: its recipe values (defaults filled in), model shapes, layout."""

    id: str
    kind: str  # grpo | dpo | sft | vllm (a data stage generating with vLLM)
    shape: ModelShape
    sharding: me.Sharding
    procs_per_node: int
    hardware: Hardware
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    judges: list[Judge] = field(default_factory=list)
    images_per_sample: int = 1
    prompt_tokens: int | None = None
    rows: list[Row] = field(default_factory=list)
    ssb_bytes_per_proc: int = 0
    disk_bytes: int = 0

    def add(self, item: str, needed: Any, available: Any = None, verdict: str = "", **kw: Any) -> None:
        self.rows.append(Row(self.id, item, needed, available, verdict, **kw))

    def refused_here(self) -> bool:
        return any(r.verdict == REFUSED for r in self.rows)

    @property
    def prompt_len(self) -> int:
        if self.prompt_tokens is not None:
            return self.prompt_tokens
        image = self.shape.image
        return PROMPT_TEXT_TOKENS + (image.tokens * self.images_per_sample if image else 0)


def check_tp(ctx: StageContext, tp: int, key: str) -> bool:
    """vLLM's head rule, and an engine within one node; True when `tp` is usable."""
    text, per_node = ctx.shape.text, ctx.hardware.gpus_per_node
    problem = me.vllm_tp_problem(text, tp)
    if problem is None and per_node is not None and tp > per_node:
        problem = f"an engine spans one node: {tp} > {per_node} GPUs per node"
    heads = f"{text.heads} heads / {text.kv_heads} KV"
    item = f"vLLM TP {tp} vs {ctx.shape.name}"
    if problem is None:
        ctx.add(item, f"TP {tp}", heads, OK)
        return True
    valid = me.valid_tp_sizes(text, per_node or 8)
    ctx.add(item, f"TP {tp}", heads, REFUSED, key=key, hint=f"{problem}; valid sizes: {valid}")
    return False


def check_vllm_engine(ctx: StageContext, tp: int, utilization: float, max_len: int, prefix: str) -> None:
    """One GPU of an engine: weight shard + KV of one max_model_len sequence + overhead vs its share."""
    weights, kv = me.vllm_engine_bytes(ctx.shape.total_params, ctx.shape.text, tp, max_len)
    needed = weights + kv + me.VLLM_OVERHEAD_BYTES
    gpu = ctx.hardware.gpu_memory
    budget = int(utilization * gpu) if gpu else None
    ctx.add(f"vLLM weights / TP {tp}", weights)
    ctx.add(f"vLLM KV cache, {max_len} tokens", kv)
    ctx.add("vLLM CUDA graphs + profiling", me.VLLM_OVERHEAD_BYTES)
    ctx.add(
        f"vLLM engine ({utilization:g} x GPU)",
        needed,
        budget,
        verdict(needed, budget),
        key=f"{prefix}gpu_memory_utilization",
        hint=f"or a larger {prefix}tensor_parallel_size",
    )


def check_max_len(ctx: StageContext, new_tokens: int, max_len: int, key: str) -> None:
    needed = ctx.prompt_len + new_tokens
    ctx.add(
        "max_model_len >= prompt + new tokens",
        f"{needed} tokens",
        f"{max_len} tokens",
        verdict(needed, max_len),
        key=key,
        hint="longer prompts cannot be generated for",
    )


def generation_stage_rows(ctx: StageContext, backend_kwargs: dict[str, Any], new_tokens: int | None) -> None:
    """A data stage generating with vLLM (distill, pass-rate filter, preference pairs)."""
    tp = int(backend_kwargs.get("tensor_parallel_size", 1))
    prefix = "model.backend_kwargs."
    if not check_tp(ctx, tp, prefix + "tensor_parallel_size"):
        return
    max_len = int(backend_kwargs.get("max_model_len") or ctx.shape.text.max_positions)
    if new_tokens is not None:
        check_max_len(ctx, int(new_tokens), max_len, prefix + "max_model_len")
    check_vllm_engine(ctx, tp, float(backend_kwargs.get("gpu_memory_utilization", 0.9)), max_len, prefix)


def scoring_beside_engine_rows(
    ctx: StageContext, rm: ModelShape, batch: int, new_tokens: int, utilization: float, max_length: int | None
) -> None:
    """A data stage scoring its rollouts with a reward model (R1V2's preference pairs): the model loads
    whole on the process's device, the engine's first GPU, while the engine keeps its share there."""
    gpu = ctx.hardware.gpu_memory
    weights = me.BF16 * rm.total_params
    tokens = PROMPT_TEXT_TOKENS + (rm.image.tokens * ctx.images_per_sample if rm.image else 0) + new_tokens
    tokens = min(tokens, max_length) if max_length else tokens
    forward = me.scoring_forward_bytes(rm.text, batch, tokens)
    ctx.add(f"reward model {rm.name} (full copy on the engine's first GPU)", weights)
    ctx.add(f"reward model forward: {batch} x {tokens} tokens, one layer at a time", forward)
    if gpu is None:
        return
    needed = int(utilization * gpu) + weights + forward + me.GPU_RESERVE_BYTES
    ctx.add(
        f"first GPU: vLLM share ({utilization:g}) + reward model",
        needed,
        gpu,
        verdict(needed, gpu),
        key="model.backend_kwargs.gpu_memory_utilization",
        hint="the reward model scores beside the running engine: lower the engine's share, or "
        "reward_model.batch_size / reward_model.max_length",
    )


def training_stage_rows(ctx: StageContext) -> None:
    """GPU (vLLM, generation, training step), host and disk rows of a training stage."""
    shape = ctx.shape
    parts = list(ctx.model.get("trainable") or [])
    trainable = shape.trainable_params(parts)
    states = me.model_states(shape.total_params, trainable, layer_params(shape.text), ctx.sharding)
    copies = _frozen_copies(ctx)
    vllm_resident = _colocated_vllm_rows(ctx, states, copies)
    _training_step_rows(ctx, states, copies, vllm_resident, "vision" in parts)
    _host_rows(ctx, states.host, sum(c.host for c in copies))
    _disk_rows(ctx, trainable)


def _sequence(ctx: StageContext) -> int:
    if ctx.kind == "grpo":
        return ctx.prompt_len + int(ctx.training["max_completion_length"])
    return int(ctx.training.get("max_length") or 1024)


def steps_per_generation(training: dict[str, Any]) -> int:
    """GRPO's `steps_per_generation` as TRL resolves it (`GRPOConfig.__post_init__`: unset means
    `gradient_accumulation_steps`). Read from the parsed values, not an instantiated GRPOConfig:
    transformers refuses to build one with `bf16: true` on a machine without a GPU, where preflight
    judges other hardware."""
    return int(training.get("steps_per_generation") or training["gradient_accumulation_steps"])


def _generation_batch(ctx: StageContext) -> int:
    """Samples one process generates at a time (GRPO: per_device x steps_per_generation)."""
    t = ctx.training
    per_device = int(t["per_device_train_batch_size"])
    return per_device * steps_per_generation(t)


def _pixel_row(ctx: StageContext, samples: int) -> tuple[str, int]:
    images = samples * ctx.images_per_sample
    bytes_ = me.pixel_bytes(ctx.shape.image, images, ctx.sharding.deepspeed)
    return f"pixel values: {images} images", bytes_


def _colocated_vllm_rows(ctx: StageContext, states: me.ModelStates, copies: list[Copy]) -> int:
    """GRPO's colocated engine; returns what it keeps on the GPU during the training step."""
    t, gpu = ctx.training, ctx.hardware.gpu_memory
    if not (ctx.kind == "grpo" and t.get("use_vllm") and t.get("vllm_mode") == "colocate"):
        return 0
    tp = int(t.get("vllm_tensor_parallel_size") or 1)
    if not check_tp(ctx, tp, "training.vllm_tensor_parallel_size"):
        return 0
    if ctx.sharding.world % tp:
        ctx.add(
            "world size divisible by vLLM TP",
            f"TP {tp}",
            f"{ctx.sharding.world} processes",
            REFUSED,
            key="training.vllm_tensor_parallel_size",
            hint=f"TRL groups the processes into engines of TP {tp}: launch a multiple of {tp} processes "
            f"(--num_processes) or lower the TP",
        )
    max_len = int(t.get("vllm_max_model_length") or ctx.shape.text.max_positions)
    check_max_len(ctx, int(t["max_completion_length"]), max_len, "training.vllm_max_model_length")
    utilization = float(t["vllm_gpu_memory_utilization"])
    check_vllm_engine(ctx, tp, utilization, max_len, "training.vllm_")
    if gpu is None:
        return 0
    share = int(utilization * gpu)
    _kv_concurrency_row(ctx, tp, share)
    label, pixels = _pixel_row(ctx, _generation_batch(ctx))
    during = states.weights + states.grads + states.optimizer + sum(c.gpu for c in copies) + share + pixels
    during += me.GPU_RESERVE_BYTES
    ctx.add(
        f"GPU: generation (training state, judges, {label.split(':')[0]}, vLLM share)",
        during,
        gpu,
        verdict(during, gpu),
        key="training.vllm_gpu_memory_utilization",
        hint="or shard the training state further",
    )
    return me.VLLM_ASLEEP_BYTES if t.get("vllm_enable_sleep_mode") else share


def _kv_concurrency_row(ctx: StageContext, tp: int, share: int) -> None:
    """How many full-length rollouts the engine's KV cache runs at once, of those it is given."""
    t = ctx.training
    sequence = ctx.prompt_len + int(t["max_completion_length"])
    weights, _ = me.vllm_engine_bytes(ctx.shape.total_params, ctx.shape.text, tp, sequence)
    tokens, at_once = me.kv_sequences_at_once(share, weights, ctx.shape.text, tp, sequence)
    rollouts = _generation_batch(ctx) * tp  # TRL gathers the prompts of an engine's TP group
    share_ok = at_once >= me.KV_CONCURRENCY_WARN_SHARE * rollouts
    ctx.add(
        f"vLLM sequences at once ({tokens} KV tokens / {sequence})",
        f"{rollouts} rollouts per engine",
        f"{min(at_once, rollouts)} at once ({at_once / max(rollouts, 1):.0%})",
        OK if share_ok else WARN,
        key="training.vllm_gpu_memory_utilization",
        hint=f"below {me.KV_CONCURRENCY_WARN_SHARE:.0%} the rollouts run in waves and dominate step time; "
        "a larger share or vllm_tensor_parallel_size holds more",
    )


def _training_step_rows(
    ctx: StageContext, states: me.ModelStates, copies: list[Copy], vllm: int, vision_trains: bool
) -> None:
    t, gpu = ctx.training, ctx.hardware.gpu_memory
    per_device, seq = int(t["per_device_train_batch_size"]), _sequence(ctx)
    factor = 2 if ctx.kind == "dpo" else 1  # chosen and rejected go through one forward
    checkpointing = bool(t.get("gradient_checkpointing"))
    vision = ctx.shape.vision if vision_trains and ctx.shape.image else None
    frozen = sum(c.gpu for c in copies)
    fixed = states.weights + states.grads + states.optimizer + states.gather + frozen + vllm
    fixed += me.GPU_RESERVE_BYTES
    if ctx.kind == "grpo":  # the whole generation batch stays on the GPU while it trains
        pixel_label, pixels = _pixel_row(ctx, _generation_batch(ctx))
        fixed += pixels

    def batch_bytes(batch: int) -> int:
        images = batch * factor * ctx.images_per_sample
        tower = me.vision_activation_bytes(vision, images, checkpointing) if vision else 0
        text = me.activation_bytes(ctx.shape.text, batch * factor, seq, checkpointing)
        own_pixels = 0 if ctx.kind == "grpo" else _pixel_row(ctx, batch * factor)[1]
        return text + tower + own_pixels

    def step(batch: int) -> int:
        return fixed + batch_bytes(batch)

    rows: list[tuple[str, int]] = [
        ("weights (bf16)", states.weights),
        ("gradients", states.grads),
        ("optimizer state", states.optimizer),
        ("ZeRO-3 layer gathers", states.gather),
        *((c.label, c.gpu) for c in copies),
        ("vLLM asleep" if t.get("vllm_enable_sleep_mode") else "vLLM share (no sleep mode)", vllm),
    ]
    for label, value in rows:
        if value:
            ctx.add(label, value)
    how = ", checkpointed" if checkpointing else ""
    ctx.add(
        f"activations: {per_device * factor} x {seq} tokens{how}",
        me.activation_bytes(ctx.shape.text, per_device * factor, seq, checkpointing),
    )
    if vision is not None:
        images = per_device * factor * ctx.images_per_sample
        ctx.add(
            f"vision tower activations: {images} images x {vision.tokens_per_image} tokens{how}",
            me.vision_activation_bytes(vision, images, checkpointing),
        )
    if ctx.kind == "grpo":
        if pixels:
            ctx.add(f"generation batch {pixel_label}", pixels)
    elif ctx.shape.image:
        ctx.add(*_pixel_row(ctx, per_device * factor))
    ctx.add("CUDA context, NCCL, fragmentation", me.GPU_RESERVE_BYTES)
    if gpu is None:
        ctx.add("GPU: training step", step(per_device), None, UNCHECKED)
        return
    fits = [b for b in range(1, per_device + 1) if step(b) <= gpu]
    if fits:
        hint = f"{max(fits)} fits; raise gradient_accumulation_steps to keep the batch"
    else:
        hint = "1 does not fit: shard or offload more (accelerate config) or add GPUs"
        hint += "" if checkpointing else "; or training.gradient_checkpointing: true"
    ctx.add(
        "GPU: training step",
        step(per_device),
        gpu,
        verdict(step(per_device), gpu),
        key="training.per_device_train_batch_size",
        hint=hint,
    )


def _frozen_copies(ctx: StageContext) -> list[Copy]:
    """Frozen models each process holds besides the policy, as the code places them.

    The reference model (MPO; GRPO with beta > 0): TRL prepares it like the policy (sharded and
    offloaded with it under ZeRO-3, a full copy otherwise). A reward model: TRL's placement
    (`rewards/loading.place_for_inference`): a text model like the reference; a VLM keeps a full copy
    on every GPU (its forwards differ between ranks). The verifier's judge: whole on every GPU
    (transformers backend), or its own vLLM engine's share of the GPU.
    """
    copies = []
    total, sh, gpu = ctx.shape.total_params, ctx.sharding, ctx.hardware.gpu_memory
    needs_reference = (ctx.kind == "dpo" and not ctx.training.get("precompute_ref_log_probs")) or (
        ctx.kind == "grpo" and float(ctx.training.get("beta") or 0) > 0
    )
    if needs_reference:
        ref = me.model_states(total, 0, 0, sh)
        copies.append(Copy("reference model", ref.weights, ref.host))
    for judge in ctx.judges:
        params = judge.shape.total_params
        if judge.role == "verifier" and judge.backend == "vllm":
            need = me.BF16 * params + me.VLLM_OVERHEAD_BYTES
            share = max(int(judge.utilization * gpu), need) if gpu else need
            copies.append(Copy(f"verifier {judge.name}: vLLM engine ({judge.utilization:g} x GPU)", share))
        elif judge.role == "verifier":
            copies.append(Copy(f"verifier {judge.name} (whole on every GPU)", me.BF16 * params))
        elif judge.vlm or not sh.deepspeed or sh.zero_stage < 3:
            why = "a VLM: its forwards differ between ranks" if judge.vlm else "not ZeRO-3"
            copies.append(Copy(f"reward model {judge.name} (full copy per GPU: {why})", me.BF16 * params))
        else:
            rm = me.model_states(params, 0, 0, sh)
            copies.append(Copy(f"reward model {judge.name} (sharded like the policy)", rm.weights, rm.host))
    return copies


def _host_rows(ctx: StageContext, offload: int, frozen: int) -> None:
    """Host memory per node: ZeRO offload (policy and frozen copies) and the Selective Sample Buffer."""
    procs, t = ctx.procs_per_node, ctx.training
    total = (offload + frozen) * procs
    if offload:
        ctx.add(f"host: ZeRO offload, {procs} processes", offload * procs)
    if frozen:
        ctx.add(f"host: offloaded frozen models, {procs} processes", frozen * procs)
    ssb = ctx.kind == "grpo" and bool(t.get("ssb_enabled"))
    if ssb:
        completion = int(t["max_completion_length"])
        floats = 1  # old log-probs
        if t.get("use_vllm") and t["vllm_importance_sampling_correction"]:
            floats += 2  # vLLM's sampling log-probs and the importance ratio
        floats += 1 if float(t.get("beta") or 0) > 0 else 0  # reference log-probs
        sample = me.ssb_sample_bytes(
            ctx.prompt_len, completion, ctx.shape.image, ctx.images_per_sample, completion_float_fields=floats
        )
        grad_accum = int(t["gradient_accumulation_steps"])
        held, why = me.ssb_held_samples(
            int(t["ssb_capacity"]),
            t.get("ssb_max_age"),
            int(t["per_device_train_batch_size"]),
            grad_accum,
            steps_per_generation(t),
        )
        ctx.ssb_bytes_per_proc = held * sample
        ctx.add(
            f"host: SSB, {procs} processes x {held} samples x {me.gb(sample)}",
            held * sample * procs,
            hint=f"held per process: {why}",
        )
        total += held * sample * procs
    if total:
        host = ctx.hardware.host_memory
        key = "training.ssb_capacity" if ssb else "offload_optimizer_device (accelerate config)"
        ctx.add(
            "host memory per node",
            total,
            host,
            verdict(total, host),
            key=key,
            hint="or training.ssb_max_age" if ssb else "or more nodes",
        )


def _disk_rows(ctx: StageContext, trainable: int) -> None:
    t, total = ctx.training, ctx.shape.total_params
    if t.get("save_only_model"):
        per_ckpt = me.BF16 * total
    else:
        ssb = ctx.ssb_bytes_per_proc * ctx.sharding.world
        per_ckpt = me.checkpoint_bytes(total, trainable, ctx.sharding, extra=ssb)
    final = me.BF16 * total
    limit = t.get("save_total_limit")
    if str(t["save_strategy"]).lower() == "no":
        limit = 0
    if limit is None:
        ctx.add(
            f"disk: checkpoints of {me.gb(per_ckpt)}, none deleted",
            "unbounded",
            None,
            REFUSED,
            key="training.save_total_limit",
            hint="null keeps every checkpoint",
        )
        ctx.disk_bytes = final
        return
    ctx.disk_bytes = needed = int(limit) * per_ckpt + final
    ctx.add(
        f"disk: save_total_limit {limit} x {me.gb(per_ckpt)} + final model",
        needed,
        ctx.hardware.disk,
        verdict(needed, ctx.hardware.disk),
        key="training.save_total_limit",
        hint="a checkpoint holds the bf16 weights, the ZeRO optimizer partitions and the SSB buffers",
    )
