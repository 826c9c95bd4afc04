"""`skywork-rl preflight`: will a recipe or pipeline start and fit on this hardware, before it runs?

    skywork-rl preflight recipes/skywork-r1v3/pipeline.yaml --gpus 8 --gpu-memory 80GB --nodes 4
    skywork-rl preflight recipes/skywork-r1v3/grpo.yaml --accelerate-config \
        recipes/accelerate/multi_node_zero3.yaml --model OpenGVLab/InternVL3-38B-hf --gpus 8 --gpu-memory 80GB --nodes 4

For every stage it reads the model's `config.json` offline (a local folder, `--model-config-dir`, or
the local Hugging Face cache; it says when it cannot, and never downloads) and checks vLLM's
tensor-parallel rule against the LLM's heads, the per-GPU memory of a training step (weights,
gradients and optimizer state by ZeRO stage and offload, activations, reference/reward models),
GRPO's colocated vLLM engine, host memory (ZeRO offload, the Selective Sample Buffer) and checkpoint
disk use. It prints a table ending `N checked, M unchecked` and exits 1 when something cannot fit,
naming the stage and the recipe key, and 3 when it was given hardware (--gpus, or this machine's GPUs)
it could not judge because a model's config.json is not available offline (`--allow-unchecked`: 0).
`preflight_pipeline` runs the same checks for `skywork-rl run --dry-run`, and `skywork_rl.preflight.guard`
before `stage` and `run` train on a machine with GPUs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from skywork_rl.errors import SkyworkError
from skywork_rl.preflight.checks import (
    PROMPT_TEXT_TOKENS,
    Judge,
    StageContext,
    generation_stage_rows,
    scoring_beside_engine_rows,
    steps_per_generation,
    training_stage_rows,
)
from skywork_rl.preflight.layout import Hardware, hardware_from_flags, read_layout
from skywork_rl.preflight.report import (
    OK,
    REFUSED,
    UNCHECKED,
    PreflightRefused,
    PreflightReport,
    Row,
    verdict,
)
from skywork_rl.preflight.shapes import ShapeCache
from skywork_rl.runner.plan import plan_pipeline
from skywork_rl.stages.parsing import parse_namespace, resolved_dict
from skywork_rl.stages.registry import get_stage_class

UNJUDGED_EXIT = 3  # asked to judge hardware (--gpus, or this machine's GPUs) it could not judge

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


def _training_kind(stage_class: Any) -> str | None:
    cls = _group_type(stage_class, "training")
    if cls is None:
        return None
    from trl import DPOConfig, GRPOConfig

    return "grpo" if issubclass(cls, GRPOConfig) else "dpo" if issubclass(cls, DPOConfig) else "sft"


def check_stage(
    sid: str,
    stage_class: Any,
    resolved: dict[str, Any],
    *,
    hardware: Hardware,
    shapes: ShapeCache,
    model_name: str | None = None,
    accelerate_config: Path | None = None,
    num_processes: int | None = None,
    prompt_tokens: int | None = None,
    images_per_sample: int = 1,
    paper: dict[str, tuple[int, str]] | None = None,
    launched: dict[str, Any] | None = None,
) -> tuple[list[Row], str | None, int]:
    """One stage's rows, its header line (None: nothing to check) and its disk bytes.

    `resolved`: the stage's config as its parser resolved it (`PlannedStage.resolved`, or a recipe's
    `resolved_dict`): every group complete, each default from the stage's dataclasses (TRL's own for
    `training:`), so nothing here restates a default.
    `paper`: the paper's episode sizes for this recipe (`paper_sizes`); `launched`: the layout of the
    `accelerate launch` this process runs in (`layout.launched_layout`).
    """
    kind = _training_kind(stage_class)
    config = resolved
    model = config.get("model") or {}
    if kind is None and model.get("backend") != "vllm":
        return [], None, 0  # a CPU data step, or generation with transformers on one device
    name = model_name or model.get("name_or_path") or ""
    training = config["training"] if kind else {}
    launch_rows: list[Row] = []
    if kind:
        sharding, per_node, use_cpu = read_layout(accelerate_config, hardware, num_processes, launched)
        layout = f"{sharding.label}, {sharding.world} processes ({per_node} per node)"
        if use_cpu or training.get("use_cpu"):
            return [Row(sid, "device", "CPU (use_cpu)", None, OK)], f"  {sid}: on CPU, nothing to check", 0
        launch_rows += _process_rows(sid, per_node, hardware, accelerate_config, launched)
        launch_rows += episode_rows(sid, kind, training, sharding.world, paper)
    else:
        sharding, per_node, use_cpu = read_layout(None, hardware, 1)
        layout = "one process driving a vLLM engine"
    shape = shapes.get(name) if name else None
    header = f"  {sid}: {layout}; model {name or '?'}" + (f" (config: {shape.source})" if shape else "")
    if shape is None:
        why = shapes.missing.get(name) or "model.name_or_path is empty: pass --model"
        return (
            [
                *launch_rows,
                Row(sid, f"model {name or '?'}", "config.json", None, UNCHECKED, why_unchecked=why),
            ],
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
        rows=launch_rows,
    )
    if kind is None:
        new_tokens = next(
            (g["max_new_tokens"] for g in config.values() if isinstance(g, dict) and "max_new_tokens" in g),
            None,
        )
        backend_kwargs = model.get("backend_kwargs") or {}
        generation_stage_rows(ctx, backend_kwargs, new_tokens)
        scorer = config.get("reward_model")
        if isinstance(scorer, dict) and scorer.get("name_or_path") and not ctx.refused_here():
            rm_name = str(scorer["name_or_path"])
            rm_shape = shapes.get(rm_name)
            if rm_shape is None:
                ctx.add(
                    f"reward model {rm_name}",
                    "config.json",
                    None,
                    UNCHECKED,
                    why_unchecked=shapes.missing[rm_name],
                )
            else:
                scoring_beside_engine_rows(
                    ctx,
                    rm_shape,
                    int(scorer.get("batch_size") or 8),
                    int(new_tokens or 0),
                    float(backend_kwargs.get("gpu_memory_utilization", 0.9)),
                    scorer.get("max_length"),
                )
        return ctx.rows, header, 0
    ctx.training = training
    if kind == "grpo":
        _add_judges(ctx, config["rewards"], shapes)
    training_stage_rows(ctx)
    return ctx.rows, header, ctx.disk_bytes


def _add_judges(ctx: StageContext, rewards: dict[str, Any], shapes: ShapeCache) -> None:
    """The verifier's judge and the reward model a GRPO stage's rewards load."""
    funcs = list(rewards.get("reward_funcs") or [])
    wanted = []
    if "verifier" in funcs and rewards.get("verifier_model"):
        wanted.append(("verifier", str(rewards["verifier_model"])))
    if "reward_model" in funcs and rewards.get("reward_model"):
        wanted.append(("reward model", str(rewards["reward_model"])))
    for role, name in wanted:
        shape = shapes.get(name)
        if shape is None:
            ctx.add(
                f"{role} {name}", "config.json", None, UNCHECKED, why_unchecked=shapes.missing.get(name, "")
            )
            continue
        kind = rewards.get("reward_model_kind") or "auto"
        vlm = kind == "vlm" or (kind == "auto" and shape.image is not None)
        utilization = float((rewards.get("verifier_backend_kwargs") or {}).get("gpu_memory_utilization", 0.9))
        backend = str(rewards.get("verifier_backend") or "transformers")
        ctx.judges.append(Judge(role, name, shape, backend, utilization, vlm and role == "reward model"))


def _process_rows(
    sid: str, per_node: int, hw: Hardware, accelerate_config: Path | None, launched: dict[str, Any] | None
) -> list[Row]:
    """On this machine: a launch of more processes per node than it has GPUs fails in CUDA
    ("invalid device ordinal"); refused before it starts."""
    if not hw.detected or hw.gpus_per_node is None or per_node <= hw.gpus_per_node:
        return []
    source = "this accelerate launch" if launched else f"accelerate config {accelerate_config or '(none)'}"
    return [
        Row(
            sid,
            "processes per node vs this machine's GPUs",
            f"{per_node} processes",
            f"{hw.gpus_per_node} GPUs",
            REFUSED,
            key="num_processes",
            hint=f"{source} starts {per_node} per node, one GPU each: launch with --num_processes "
            f"{hw.gpus_per_node} (a pipeline: num_processes: {hw.gpus_per_node}) and keep the episode "
            "(see the episode rows)",
        )
    ]


def episode_rows(
    sid: str, kind: str, training: dict[str, Any], world: int, paper: dict[str, tuple[int, str]] | None
) -> list[Row]:
    """The paper's episode on this world size: rollouts per episode (GRPO) and batch size.

    rollouts_per_episode = per_device_train_batch_size x processes x steps_per_generation, and
    batch_size = per_device_train_batch_size x processes x gradient_accumulation_steps (the definitions
    of recipes/paper_values.yaml). A world the recipe was not sized for changes them silently; it is
    refused with the accumulation that keeps the paper's numbers on this world.
    """
    if not paper:
        return []
    per_device = int(training["per_device_train_batch_size"])
    accum = int(training["gradient_accumulation_steps"])
    per_gen = steps_per_generation(training) if kind == "grpo" else accum
    rows = []
    for name, steps, keys in (
        ("rollouts_per_episode", per_gen, "steps_per_generation"),
        ("batch_size", accum, "gradient_accumulation_steps"),
    ):
        if name not in paper or (name == "rollouts_per_episode" and kind != "grpo"):
            continue
        want, quote = paper[name]
        have = per_device * world * steps
        item = f"{name} = {per_device} per device x {world} processes x {steps} {keys}"
        if have == want:
            rows.append(Row(sid, item, str(have), f"{want} (paper)", OK))
            continue
        unit = per_device * world
        paper_says = f"paper: {quote!r}; "
        if want % unit == 0:
            ratio = accum / per_gen if kind == "grpo" else 1
            new_steps = want // unit
            fix = {"steps_per_generation": new_steps, "gradient_accumulation_steps": round(new_steps * ratio)}
            if keys == "gradient_accumulation_steps":
                fix = {"gradient_accumulation_steps": new_steps}
                if kind == "grpo":
                    fix["steps_per_generation"] = round(new_steps / ratio)
            settings = ", ".join(f"training.{k}: {v}" for k, v in fix.items())
            hint = f"{paper_says}on {world} processes set {settings}"
        else:
            hint = (
                f"{paper_says}{want} is not a multiple of {per_device} x {world} processes: change "
                "training.per_device_train_batch_size too, or launch the processes the recipe documents"
            )
        says = f"this launch makes it {have}, the paper's is {want}"
        rows.append(
            Row(
                sid, item, str(have), f"{want} (paper)", REFUSED, key=f"training.{keys}", hint=hint, says=says
            )
        )
    return rows


def paper_sizes(
    *, recipe: str | Path | None = None, pipeline: str | Path | None = None, stage_id: str | None = None
) -> dict[str, tuple[int, str]] | None:
    """The paper's episode sizes (`derived` values of recipes/paper_values.yaml) for a paper recipe
    file or a paper pipeline's stage; None for any other recipe (nothing to hold it to).

    paper_values.yaml is found beside the recipe folders (recipes/paper_values.yaml for
    recipes/skywork-r1v3/grpo.yaml and recipes/skywork-r1v3/pipeline.yaml).
    """
    target = Path(recipe or pipeline or "").resolve()
    values_file = target.parent.parent / "paper_values.yaml"
    if not values_file.is_file():
        return None
    spec = yaml.safe_load(values_file.read_text()) or {}
    relative = target.relative_to(values_file.parent).as_posix()
    if recipe is not None:  # a named variant differs from its base recipe in other keys only
        for variant in spec.get("variants") or []:
            if variant.get("recipe") == relative and not any(
                str(k).startswith(("training.per_device", "training.gradient_acc", "training.steps_per"))
                for k in variant.get("differs_in") or []
            ):
                relative = str(variant.get("base"))
    out: dict[str, tuple[int, str]] = {}
    for check in spec.get("checks") or []:
        if recipe is not None and check.get("recipe") != relative:
            continue
        if pipeline is not None and (check.get("pipeline") != relative or check.get("id") != stage_id):
            continue
        for name in check.get("values") or []:
            derived = ((spec.get("values") or {}).get(name) or {}).get("derived") or {}
            for key in ("rollouts_per_episode", "batch_size"):
                if key in derived:
                    out[key] = (int(derived[key][0]), str(derived[key][1]))
    return out or None


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
    return PreflightReport(header, rows, hardware_known=hardware.gpus_per_node is not None)


def _hardware(hardware: Hardware | None) -> Hardware:
    """The given hardware, else this machine's as the guard sees it (GPUs, RAM, free disk)."""
    here = hardware or hardware_from_flags(None, None)
    return here or Hardware(source="no GPU here; pass --gpus and --gpu-memory")


def preflight_pipeline(
    pipeline: str | Path,
    *,
    hardware: Hardware | None = None,
    model_config_dir: str | Path | None = None,
    planned: tuple[dict[str, Any], list[Any]] | None = None,
    output_root: str | None = None,
    prompt_tokens: int | None = None,
    images_per_sample: int = 1,
    stage_ids: set[str] | None = None,
) -> PreflightReport:
    """Check every stage of a pipeline (`planned`: reuse a `plan_pipeline(...)` result), or only
    `stage_ids` (the stages `run` will start).

    A stage whose model is an earlier stage's output is sized by that stage's model. Without
    `hardware` this machine's GPUs are used when it has some; with none, only the checks that need no
    hardware (vLLM's tensor-parallel rule, a paper recipe's episode) can refuse.
    """
    spec, stages = planned or plan_pipeline(pipeline, output_root)
    hw, shapes = _hardware(hardware), ShapeCache(model_config_dir)
    origins: dict[str, str] = {}
    results = []
    for st in stages:
        name = st.input_model or (st.resolved.get("model") or {}).get("name_or_path")
        while name and str(Path(name)) in origins:
            name = origins[str(Path(name))]
        if st.stage_class.produces == "model" and name:
            origins[str(Path(st.output_dir))] = name
        if stage_ids is not None and st.id not in stage_ids:
            continue
        results.append(
            check_stage(
                st.id,
                st.stage_class,
                st.resolved,
                hardware=hw,
                shapes=shapes,
                model_name=name,
                accelerate_config=st.accelerate_config,
                num_processes=st.num_processes or spec.get("num_processes"),
                prompt_tokens=prompt_tokens,
                images_per_sample=images_per_sample,
                paper=paper_sizes(pipeline=pipeline, stage_id=st.id),
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
    num_processes: int | None = None,
    config: dict[str, Any] | None = None,
    launched: dict[str, Any] | None = None,
) -> PreflightReport:
    """Check one stage recipe; `model` sizes it when its model.name_or_path does not exist yet.

    `config`: the recipe as the stage resolved it (`resolved_dict` of its file plus command-line
    overrides; default: the file, parsed by the stage's parser); `num_processes` / `launched`: the
    launch it runs under (`skywork-rl stage`'s guard).
    """
    try:
        stage_class = get_stage_class(stage)
    except (KeyError, ImportError) as exc:
        raise PreflightRefused(f"{recipe}: {exc.args[0] if exc.args else exc}; pass --stage NAME") from exc
    if config is None:
        config = resolved_dict(parse_namespace(stage_class, ["--config", str(recipe)], str(recipe))[1])
    hw = _hardware(hardware)
    result = check_stage(
        stage,
        stage_class,
        config,
        hardware=hw,
        shapes=ShapeCache(model_config_dir),
        model_name=model,
        accelerate_config=Path(accelerate_config) if accelerate_config else None,
        num_processes=num_processes,
        prompt_tokens=prompt_tokens,
        images_per_sample=images_per_sample,
        paper=paper_sizes(recipe=recipe) if Path(recipe).is_file() else None,
        launched=launched,
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
    p.add_argument(
        "--num-processes",
        type=int,
        help="a recipe's launch on this machine's GPUs (as `stage --num_processes`; default: the accelerate "
        "config's); with --gpus the world is gpus x nodes",
    )
    p.add_argument(
        "--allow-unchecked",
        action="store_true",
        help=f"exit 0 when the hardware could not be judged (a model without a local config.json); "
        f"default: exit {UNJUDGED_EXIT}",
    )
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
                num_processes=args.num_processes,
                **common,
            )
    except (SkyworkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    if report.refused:
        return 1
    if report.unjudged and not args.allow_unchecked:
        names = sorted({r.item for r in report.unjudged})
        print(
            f"error: preflight could not judge this hardware for {len(report.unjudged)} row(s) ({', '.join(names)}): "
            "give their config.json (--model-config-dir DIR with DIR/<org>/<name>/config.json, or "
            "`hf download ORG/NAME config.json preprocessor_config.json`), or pass --allow-unchecked",
            file=sys.stderr,
        )
        return UNJUDGED_EXIT
    return 0
