"""Model adapters: load any HF VLM by name or path, and name its three parts.

Every stage freezes or trains by *part* — ``vision`` (encoder), ``connector`` (the MLP projector
between encoder and LLM, which R1V3 trains alone in its connector-only tuning stage), ``llm`` (the reasoning
language model and its head). Architectures name these modules differently, so a registry keyed
by ``config.model_type`` (each family's `Family.parts`, in `skywork_rl/families/<family>.py`) maps each
part to regexes over parameter names; a recipe can override any
part with its own regex for a model the registry does not know. The patterns are checked against
the real models of every family (`tests/families`, built by `skywork_rl.miniature.tiny`) in the installed
transformers, whose module names changed in 5.0. What a family's processor cannot do for a stage
lives beside them in `skywork_rl.families.capabilities` (`check_family_capabilities`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skywork_rl.errors import SkyworkError
from skywork_rl.families.base import Family, PartPatterns

# Re-exported: stages check a family's capabilities where they resolve its parts.
from skywork_rl.families.capabilities import FamilyCapabilityError, check_family_capabilities  # noqa: F401
from skywork_rl.families.registry import FAMILY_REGISTRY, family_of

PARTS = ("vision", "connector", "llm")


class UnknownArchitectureError(SkyworkError, ValueError):
    """The registry has no part patterns for this model type (or a pattern matches nothing)."""


# config.model_type -> its Family (`skywork_rl/families/<family>.py`), by import path: the one family
# registry (`skywork_rl.families.registry`), whose entries' `parts` are the patterns used here.
PART_REGISTRY = FAMILY_REGISTRY


def register_architecture(model_type: str, target: str) -> None:
    """Register bare `PartPatterns` at ``module:attr`` for ``config.model_type`` `model_type` (a family
    with nothing but part patterns; a whole family is a `Family`, registered with `register_family`)."""
    FAMILY_REGISTRY.register(model_type, target)


def part_patterns_of(model_type: str | None) -> PartPatterns | None:
    """The registered patterns of `model_type` (None when no family registered it)."""
    if model_type is None or model_type not in PART_REGISTRY:
        return None
    entry = PART_REGISTRY.get(model_type)
    if isinstance(entry, PartPatterns):
        return entry
    if isinstance(entry, Family):
        return family_of(model_type).parts  # family_of checks the entry's model_type
    raise UnknownArchitectureError(
        f"model family {model_type!r} is registered as {PART_REGISTRY.target(model_type)}, which is a "
        f"{type(entry).__name__}, not a skywork_rl.families.base.Family (or PartPatterns)"
    )


def _patterns_for(model: nn.Module, overrides: Mapping[str, str] | None) -> dict[str, tuple[str, ...]]:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    overrides = dict(overrides or {})
    unknown_parts = set(overrides) - set(PARTS)
    if unknown_parts:
        raise ValueError(
            f"model.part_patterns: unknown part(s) {sorted(unknown_parts)}; parts are {list(PARTS)}"
        )
    base = part_patterns_of(model_type)
    if base is None and set(overrides) != set(PARTS):
        given = f" (the recipe names only {sorted(overrides)})" if overrides else ""
        raise UnknownArchitectureError(
            f"no part patterns for model_type {model_type!r}{given}; known: {sorted(PART_REGISTRY)}. "
            "Fix: set model.part_patterns in the recipe, one regex over parameter names for each of "
            f"vision, connector and llm; this model's parameters start with {module_prefixes(model)}, e.g. "
            "{vision: 'model\\.vision_tower\\.', connector: 'model\\.multi_modal_projector\\.', "
            "llm: 'model\\.language_model\\.|lm_head\\.'}; or register its family with "
            "skywork_rl.families.registry.register_family(model_type, 'package.module:FAMILY')."
        )
    patterns = {part: base.for_part(part) for part in PARTS} if base else {}
    for part, regex in overrides.items():
        patterns[part] = (regex,)
    return patterns


def module_prefixes(model: nn.Module, depth: int = 2) -> list[str]:
    """The distinct first `depth` components of the parameter names: what a part pattern starts from."""
    prefixes: dict[str, None] = {}
    for name, _ in model.named_parameters():
        prefixes.setdefault(".".join(name.split(".")[:depth]) + ".", None)
    return list(prefixes)


def resolve_parts(model: nn.Module, patterns: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Parameter names of each part (`vision`, `connector`, `llm`); a name belongs to the first part that matches.

    The connector is tested first because on some architectures (Qwen-VL) it sits inside the vision module.
    Parameters that match no part are returned under ``"other"`` so callers can report them.
    """
    compiled = {
        part: [re.compile(p) for p in regexes] for part, regexes in _patterns_for(model, patterns).items()
    }
    order = ("connector", "vision", "llm")
    result: dict[str, list[str]] = {part: [] for part in (*PARTS, "other")}
    for name, _ in model.named_parameters():
        for part in order:
            if any(rx.match(name) for rx in compiled[part]):
                result[part].append(name)
                break
        else:
            result["other"].append(name)
    for part in PARTS:
        if not result[part]:
            raise UnknownArchitectureError(
                f"part {part!r} matched no parameter of {type(model).__name__} "
                f"(patterns {list(map(str, _patterns_for(model, patterns)[part]))}); its parameters start with "
                f"{module_prefixes(model)}. Fix model.part_patterns in the recipe."
            )
    return result


def resolve_connector(model: nn.Module, pattern: str | None = None) -> list[str]:
    """Names of the connector's parameters (R1V3 trains these alone after RL)."""
    return resolve_parts(model, {"connector": pattern} if pattern else None)["connector"]


def set_trainable(
    model: nn.Module, parts: Iterable[str], patterns: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Freeze every parameter, then unfreeze the named parts; return trainable counts per part.

    Freezing everything first means parameters outside every part (``other``) stay frozen
    rather than silently training.
    """
    parts = list(parts)
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise ValueError(f"model.trainable: unknown part(s) {bad}; choose from {list(PARTS)}")
    names = resolve_parts(model, patterns)
    trainable = {n for part in parts for n in names[part]}
    counts = dict.fromkeys(PARTS, 0)
    counts["other"] = 0
    part_of = {n: part for part, ns in names.items() for n in ns}
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
        if name in trainable:
            counts[part_of[name]] += param.numel()
    return counts


@dataclass
class ModelArguments:
    """Recipe group `model:` — which checkpoint to load and which parts train."""

    name_or_path: str = field(
        default="",
        metadata={
            "help": "Hub id or local checkpoint folder. In a pipeline, empty means the previous stage's output."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run the checkpoint's own modelling code (InternVL-Chat, Skywork-R1V)."},
    )
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16 or float32."})
    attn_implementation: str | None = field(
        default=None, metadata={"help": "eager, sdpa, flash_attention_2 ..."}
    )
    trainable: list[str] = field(
        default_factory=lambda: ["llm", "connector"],
        metadata={"help": "Parts that train: any of vision, connector, llm (R1V3 SFT: llm + connector)."},
    )
    part_patterns: dict[str, str] | None = field(
        default=None,
        metadata={"help": "Override a part's parameter-name regex, e.g. {connector: 'mlp1\\.'}."},
    )
    processor_name_or_path: str | None = field(
        default=None, metadata={"help": "Processor location when it differs from the model's."}
    )


def _dtype(name: str) -> Any:
    if name == "auto":
        return "auto"
    try:
        return getattr(torch, name)
    except AttributeError as exc:
        raise ValueError(
            f"model.dtype: unknown dtype {name!r}; use auto, bfloat16, float16 or float32"
        ) from exc


def model_init_kwargs(args: ModelArguments) -> dict[str, Any]:
    """`from_pretrained` keyword arguments for a recipe's model group."""
    kwargs: dict[str, Any] = {"trust_remote_code": args.trust_remote_code, "dtype": _dtype(args.dtype)}
    if args.attn_implementation:
        kwargs["attn_implementation"] = args.attn_implementation
    return kwargs


def load_model_and_processor(
    name_or_path: str,
    *,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    attn_implementation: str | None = None,
    processor_name_or_path: str | None = None,
    device_map: Any = None,
    key: str = "model.name_or_path",
) -> tuple[nn.Module, Any]:
    """Load a VLM and its processor by hub id or path through the Auto classes (`key`: the recipe key
    that named it, for errors)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if not name_or_path:
        raise ValueError(f"{key} is empty: give a hub id or a checkpoint folder")
    check_checkpoint_folder(name_or_path, key)
    kwargs = model_init_kwargs(ModelArguments(name_or_path, trust_remote_code, dtype, attn_implementation))
    if device_map is not None:
        kwargs["device_map"] = device_map
    if trust_remote_code:
        _check_remote_code_class(name_or_path)
    import_modeling_modules(name_or_path, trust_remote_code)
    try:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path, **kwargs)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc) and not trust_remote_code:
            raise ValueError(
                f"{name_or_path}: not a transformers-native VLM ({exc}). If it ships its own code "
                "(InternVL-Chat, Skywork-R1V), set model.trust_remote_code: true."
            ) from exc
        raise
    processor = AutoProcessor.from_pretrained(
        processor_name_or_path or name_or_path, trust_remote_code=trust_remote_code
    )
    return model, processor


def import_modeling_modules(name_or_path: str, trust_remote_code: bool = False) -> list[str]:
    """Import the transformers modeling module of the model and of each sub-model now; returns their names.

    Why: under ZeRO-3, `from_pretrained` builds the model inside DeepSpeed's `zero.Init`, which wraps
    the `__init__` of every module class *defined* while it is active and puts the undecorated one
    back when it exits. A VLM builds its language model through `AutoModel.from_config`, so the LLM's
    modeling module (qwen2 for InternVL3) is first imported inside that context when nothing imported
    it before; the `kernels` decorator on its attention class (`use_kernelized_func`, which gives each
    instance its `_kernel_funcs`) is then undone when the context exits, and every later instance of
    the class (TRL's reference model, a verifier, a second load) fails its first forward with
    "'Qwen2Attention' object has no attribute '_kernel_funcs'". Imported here first, the classes are
    defined outside the context and every load sees them decorated.
    """
    import importlib

    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import model_type_to_module_name

    imported: list[str] = []
    pending = [AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)]
    seen: set[str] = set()
    while pending:
        config = pending.pop()
        model_type = getattr(config, "model_type", None)
        if model_type and model_type not in seen:
            seen.add(model_type)
            module = model_type_to_module_name(model_type)
            try:
                importlib.import_module(f"transformers.models.{module}.modeling_{module}")
                imported.append(module)
            except ImportError:  # a sub-config without its own module (e.g. internvl_vision), or remote code
                pass
        pending += [getattr(config, key) for key in (getattr(config, "sub_configs", None) or {})]
    return imported


class NotACheckpointError(SkyworkError, ValueError):
    """A model location that is a local file, or a folder without a model config."""


def check_checkpoint_folder(name_or_path: str, key: str = "model.name_or_path") -> None:
    """Refuse a local model path that cannot be a checkpoint (a file, an empty folder, a folder without
    ``config.json``) in one line, before transformers tries it as a hub id or a JSON file."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        raise NotACheckpointError(
            f"{key}: {name_or_path} is a file, not a checkpoint folder; give the folder that holds its "
            "config.json and weights (a training stage's output folder, or a downloaded model's folder)"
        )
    if path.is_dir() and not any((path / name).is_file() for name in ("config.json", "adapter_config.json")):
        contents = sorted(p.name for p in path.iterdir())
        held = "is empty" if not contents else f"holds {contents[:5]}{' ...' if len(contents) > 5 else ''}"
        raise NotACheckpointError(
            f"{key}: {name_or_path} has no config.json, so it is not a checkpoint folder (it {held}); if a "
            "stage makes it, check that stage finished (its folder holds .stage_complete), otherwise give "
            "a checkpoint folder or a hub id"
        )


def _check_remote_code_class(name_or_path: str) -> None:
    """Refuse remote code that cannot serve as an image-text-to-text model, before loading 38B of weights.

    transformers uses a checkpoint's own code for `AutoModelForImageTextToText` only when the config's
    `auto_map` names that class. The InternVL-Chat / released Skywork-R1V checkpoints map only
    AutoConfig / AutoModel / AutoModelForCausalLM and ship no processor, so TRL's VLM trainers (which
    need both) cannot drive them; their transformers-native conversions can.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=True)
    auto_map = getattr(config, "auto_map", None) or {}
    if auto_map and "AutoModelForImageTextToText" not in auto_map:
        raise ValueError(
            f"{name_or_path}: its remote code registers {sorted(auto_map)} but not AutoModelForImageTextToText, "
            "which the training stages need (with an AutoProcessor) to run the model through TRL. Use a "
            "transformers-native checkpoint of the same architecture (e.g. OpenGVLab/InternVL3-38B-hf, "
            "InternViT-6B + Qwen2.5-32B) or convert the weights to the HF InternVL layout. Generation-only "
            "steps (distill, pass-rate-filter with model.backend: vllm) can still use the remote-code checkpoint."
        )


def load_from_args(args: ModelArguments, device_map: Any = None) -> tuple[nn.Module, Any]:
    """Load a recipe's model group and apply its `trainable` parts."""
    model, processor = load_model_and_processor(
        args.name_or_path,
        trust_remote_code=args.trust_remote_code,
        dtype=args.dtype,
        attn_implementation=args.attn_implementation,
        processor_name_or_path=args.processor_name_or_path,
        device_map=device_map,
    )
    set_trainable(model, args.trainable, args.part_patterns)
    return model, processor
