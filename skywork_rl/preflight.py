"""`skywork-rl preflight`: will a recipe or pipeline start and fit on this hardware, before it runs?

    skywork-rl preflight recipes/skywork-r1v3/pipeline.yaml --gpus 8 --gpu-memory 80GB --nodes 4
    skywork-rl preflight recipes/skywork-r1v3/grpo.yaml --accelerate-config \
        recipes/accelerate/multi_node_zero3.yaml --model OpenGVLab/InternVL3-38B-hf --gpus 8 --gpu-memory 80GB --nodes 4

For every stage it reads the model's `config.json` offline (a local folder, `--model-config-dir`, or
the local Hugging Face cache; it says when it cannot, and never downloads) and checks vLLM's
tensor-parallel rule against the LLM's heads, the per-GPU memory of a training step (weights,
gradients and optimizer state by ZeRO stage and offload, activations, reference/reward models),
GRPO's colocated vLLM engine, host memory (ZeRO offload, the Selective Sample Buffer) and checkpoint
disk use. It prints a table and exits 1 when something cannot fit, naming the stage and the recipe
key. `preflight_pipeline` runs the same checks for `skywork-rl run --dry-run`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from skywork_rl.errors import SkyworkError
from skywork_rl.model_shapes import ShapeCache
from skywork_rl.preflight_checks import (
    PROMPT_TEXT_TOKENS,
    StageContext,
    generation_stage_rows,
    training_stage_rows,
)
from skywork_rl.preflight_layout import Hardware, detect_hardware, hardware_from_flags, read_layout
from skywork_rl.preflight_report import OK, UNCHECKED, PreflightRefused, PreflightReport, Row, verdict

__all__ = [
    "Hardware",
    "PreflightRefused",
    "PreflightReport",
    "main",
    "preflight_pipeline",
    "preflight_recipe",
]


def _group_type(stage_class: Any, group: str) -> Any:
    return get_type_hints(stage_class.config_class).get(group)


def _with_defaults(stage_class: Any, group: str, values: dict[str, Any] | None) -> dict[str, Any]:
    """A recipe group with the stage's dataclass defaults for the keys it leaves out."""
    cls = _group_type(stage_class, group)
    out: dict[str, Any] = {}
    if cls is not None and hasattr(cls, "__dataclass_fields__"):
        for f in fields(cls):
            if f.default is not MISSING:
                out[f.name] = f.default
            elif f.default_factory is not MISSING:
                out[f.name] = f.default_factory()
    return {**out, **(values or {})}


def _training_kind(stage_class: Any) -> str | None:
    cls = _group_type(stage_class, "training")
    if cls is None:
        return None
    from trl import DPOConfig, GRPOConfig

    return "grpo" if issubclass(cls, GRPOConfig) else "dpo" if issubclass(cls, DPOConfig) else "sft"


def check_stage(
    sid: str,
    stage_class: Any,
    config: dict[str, Any],
    *,
    hardware: Hardware,
    shapes: ShapeCache,
    model_name: str | None = None,
    accelerate_config: Path | None = None,
    num_processes: int | None = None,
    prompt_tokens: int | None = None,
    images_per_sample: int = 1,
) -> tuple[list[Row], str | None, int]:
    """One stage's rows, its header line (None: nothing to check) and its disk bytes."""
    kind = _training_kind(stage_class)
    model = _with_defaults(stage_class, "model", config.get("model"))
    if kind is None and model.get("backend") != "vllm":
        return [], None, 0  # a CPU data step, or generation with transformers on one device
    name = model_name or model.get("name_or_path") or ""
    training = _with_defaults(stage_class, "training", config.get("training")) if kind else {}
    if kind:
        sharding, per_node, use_cpu = read_layout(accelerate_config, hardware, num_processes)
        layout = f"{sharding.label}, {sharding.world} processes ({per_node} per node)"
        if use_cpu or training.get("use_cpu"):
            return [Row(sid, "device", "CPU (use_cpu)", None, OK)], f"  {sid}: on CPU, nothing to check", 0
    else:
        sharding, per_node, use_cpu = read_layout(None, hardware, 1)
        layout = "one process driving a vLLM engine"
    shape = shapes.get(name) if name else None
    header = f"  {sid}: {layout}; model {name or '?'}" + (f" (config: {shape.source})" if shape else "")
    if shape is None:
        why = shapes.missing.get(name) or "model.name_or_path is empty: pass --model"
        return (
            [Row(sid, f"model {name or '?'}", "config.json", None, UNCHECKED, why_unchecked=why)],
            header,
            0,
        )
    ctx = StageContext(
        sid,
        kind or "vllm",
        shape,
        sharding,
        per_node,
        hardware,
        model=model,
        images_per_sample=images_per_sample,
        prompt_tokens=prompt_tokens,
    )
    if kind is None:
        new_tokens = next(
            (g["max_new_tokens"] for g in config.values() if isinstance(g, dict) and "max_new_tokens" in g),
            None,
        )
        generation_stage_rows(ctx, model.get("backend_kwargs") or {}, new_tokens)
        return ctx.rows, header, 0
    ctx.training = training
    rewards = _with_defaults(stage_class, "rewards", config.get("rewards"))
    rm = rewards.get("reward_model")
    if kind == "grpo" and rm and "reward_model" in (rewards.get("reward_funcs") or []):
        ctx.reward_shape = shapes.get(rm)
        if ctx.reward_shape is None:
            ctx.add(
                f"reward model {rm}", "config.json", None, UNCHECKED, why_unchecked=shapes.missing.get(rm, "")
            )
    training_stage_rows(ctx)
    return ctx.rows, header, ctx.disk_bytes


def _report(
    title: str, hardware: Hardware, results: list[tuple[list[Row], str | None, int]]
) -> PreflightReport:
    header, rows = [title, hardware.describe()], []
    for stage_rows, stage_header, _ in results:
        header += [stage_header] if stage_header else []
        rows += stage_rows
    disk = sum(d for _, _, d in results)
    if sum(1 for _, _, d in results if d) > 1:
        rows.append(
            Row(
                "pipeline",
                "disk: all training outputs",
                disk,
                hardware.disk,
                verdict(disk, hardware.disk),
                key="training.save_total_limit",
                hint="of the stages with the largest checkpoints",
            )
        )
    return PreflightReport(header, rows)


def _hardware(hardware: Hardware | None) -> Hardware:
    return hardware or detect_hardware() or Hardware(source="no GPU here; pass --gpus and --gpu-memory")


def preflight_pipeline(
    pipeline: str | Path,
    *,
    hardware: Hardware | None = None,
    model_config_dir: str | Path | None = None,
    planned: tuple[dict[str, Any], list[Any]] | None = None,
    output_root: str | None = None,
    prompt_tokens: int | None = None,
    images_per_sample: int = 1,
) -> PreflightReport:
    """Check every stage of a pipeline (`planned`: reuse a `plan_pipeline(...)` result).

    A stage whose model is an earlier stage's output is sized by that stage's model. Without
    `hardware` this machine's GPUs are used when it has some; with none, only the checks that need no
    hardware (vLLM's tensor-parallel rule) can refuse.
    """
    from skywork_rl.pipeline import plan_pipeline

    spec, stages = planned or plan_pipeline(pipeline, output_root)
    hw, shapes = _hardware(hardware), ShapeCache(model_config_dir)
    origins: dict[str, str] = {}
    results = []
    for st in stages:
        name = st.input_model or (st.config.get("model") or {}).get("name_or_path")
        while name and str(Path(name)) in origins:
            name = origins[str(Path(name))]
        if st.stage_class.produces == "model" and name:
            origins[str(Path(st.output_dir))] = name
        results.append(
            check_stage(
                st.id,
                st.stage_class,
                st.config,
                hardware=hw,
                shapes=shapes,
                model_name=name,
                accelerate_config=st.accelerate_config,
                num_processes=st.num_processes or spec.get("num_processes"),
                prompt_tokens=prompt_tokens,
                images_per_sample=images_per_sample,
            )
        )
    return _report(f"preflight: pipeline {pipeline}", hw, results)


def preflight_recipe(
    recipe: str | Path,
    stage: str,
    *,
    accelerate_config: str | Path | None = None,
    model: str | None = None,
    hardware: Hardware | None = None,
    model_config_dir: str | Path | None = None,
    prompt_tokens: int | None = None,
    images_per_sample: int = 1,
) -> PreflightReport:
    """Check one stage recipe; `model` sizes it when its model.name_or_path does not exist yet."""
    from skywork_rl.stages.registry import get_stage_class

    try:
        stage_class = get_stage_class(stage)
    except (KeyError, ImportError) as exc:
        raise PreflightRefused(f"{recipe}: {exc.args[0] if exc.args else exc}; pass --stage NAME") from exc
    config = yaml.safe_load(Path(recipe).read_text()) or {}
    hw = _hardware(hardware)
    result = check_stage(
        stage,
        stage_class,
        config,
        hardware=hw,
        shapes=ShapeCache(model_config_dir),
        model_name=model,
        accelerate_config=Path(accelerate_config) if accelerate_config else None,
        prompt_tokens=prompt_tokens,
        images_per_sample=images_per_sample,
    )
    return _report(f"preflight: {stage} recipe {recipe}", hw, [result])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skywork-rl preflight", description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="a pipeline YAML, or a stage recipe (stage from --stage or the file name)")
    p.add_argument("--stage", help="the stage of a recipe file (default: its name, e.g. grpo.yaml -> grpo)")
    p.add_argument("--accelerate-config", help="the accelerate config a stage recipe is launched with")
    p.add_argument(
        "--model", help="hub id or folder whose config sizes a recipe's model (e.g. a future output)"
    )
    p.add_argument("--gpus", type=int, help="GPUs per node (default: this machine's, if it has any)")
    p.add_argument("--gpu-memory", help="memory of one GPU: 80GB (GB = 10^9 bytes) or 80GiB")
    p.add_argument("--nodes", type=int, default=1, help="nodes; training stages run gpus x nodes processes")
    p.add_argument("--host-memory", help="RAM per node, e.g. 1TB (default: unknown, or this GPU machine's)")
    p.add_argument(
        "--disk", help="free space for outputs, e.g. 8TB (default: unknown, or free here on a GPU machine)"
    )
    p.add_argument(
        "--model-config-dir", help="folder of <org>/<name>/config.json (or $SKYWORK_MODEL_CONFIG_DIR)"
    )
    p.add_argument(
        "--prompt-tokens", type=int, help=f"prompt length (default {PROMPT_TEXT_TOKENS} + image tokens)"
    )
    p.add_argument("--images-per-sample", type=int, default=1, help="images per prompt (default 1)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        hw = hardware_from_flags(args.gpus, args.gpu_memory, args.nodes, args.host_memory, args.disk)
        path = Path(args.file)
        if not path.is_file():
            raise PreflightRefused(f"{path}: no such file")
        spec = yaml.safe_load(path.read_text())
        common: dict[str, Any] = dict(
            hardware=hw,
            model_config_dir=args.model_config_dir,
            prompt_tokens=args.prompt_tokens,
            images_per_sample=args.images_per_sample,
        )
        if isinstance(spec, dict) and "stages" in spec:
            report = preflight_pipeline(path, **common)
        else:
            report = preflight_recipe(
                path,
                args.stage or path.stem,
                accelerate_config=args.accelerate_config,
                model=args.model,
                **common,
            )
    except (SkyworkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 1 if report.refused else 0
