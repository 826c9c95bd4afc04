"""`skywork-rl run PIPELINE --rehearse`: a paper pipeline's exact graph on CPU, with tiny stand-ins.

A rehearsal runs every stage of the real plan, under each stage's real accelerate config (so the
same DeepSpeed ZeRO stage), with the same recipe values, except for what this one rule changes:

* **sources** (each stage's `rehearsal_substitutions` hook names them): every external model becomes
  a tiny one of the same architecture class and kind, built here (`skywork_rl.runner.rehearsal_models`), and
  every external dataset a small local copy in that source's own layout (data_prep's `load-data`
  stage writes it with `data_prep/standins.py`);
* **sizes** (`SIZE_RULE`, by recipe key name, in every stage): row counts, lengths, optimizer steps,
  batch sizes, processes (2 per distributed stage, fp32: bf16 is a GPU setting), the generation
  backend (vLLM -> transformers, tensor-parallel size 1) and the device (CPU).

Every other value (learning rates and schedules, loss settings, reward functions and weights,
trainable parts, sampling settings, samples per prompt, SSB settings, pair and selection rules,
mixing proportions and domains) stays the recipe's: `differing_keys` and the tests check that a
rehearsed plan differs from the real one only in the keys this rule names. Each stage's
``stage.json`` records what was substituted (`"rehearsal": {"substitutions": {key: [real, stand-in]}}`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skywork_rl.runner.rehearsal_models import build_standin_model
from skywork_rl.stages.rehearsal import REHEARSAL_ENV, get_dotted

if TYPE_CHECKING:
    from skywork_rl.runner.plan import PlannedStage

# The rehearsal record's name in a stage's output folder (its path goes to the stage in $REHEARSAL_ENV).
REHEARSAL_FILE = "rehearsal.json"

# The sizes of a rehearsal: the one place they are set.
ROWS = 32  # rows of a stand-in source; every row count (max_rows, mix totals, probe limits) is capped at it
TOKENS = 24  # generation budget: max_new_tokens, max_completion_length
LENGTH = 1024  # training sequence cap (max_length): a stand-in row (prompt, image, trace) fits whole
STEPS = 2  # optimizer steps of each training stage (a checkpoint after each, as `save_steps` would)
MICRO_BATCH = 2  # per_device_train_batch_size cap
PROCESSES = 2  # processes of each distributed stage (gloo on CPU), under the stage's own accelerate config
SEED = 0  # stand-in data and models


Rule = Callable[[Any, dict[str, Any]], Any]

KEEP = object()  # a rule's answer when the value stays as it is


def _cap(limit: int) -> Rule:
    return lambda value, config: min(int(value), limit) if value is not None else KEEP


def _set(new: Any) -> Rule:
    return lambda value, config: new


def _tensor_parallel(value: Any, config: dict[str, Any]) -> Any:
    return 1 if value is not None else KEEP


def _backend(value: Any, config: dict[str, Any]) -> Any:
    return "transformers" if value == "vllm" else KEEP


def _backend_kwargs(value: Any, config: dict[str, Any]) -> Any:
    # vLLM's engine arguments (tensor_parallel_size, max_model_len, gpu_memory_utilization) mean nothing
    # to the transformers backend, which takes the generation batch from `model.batch_size`.
    return None if value else KEEP


def _dtype(value: Any, config: dict[str, Any]) -> Any:
    return "float32" if value in ("bfloat16", "float16", "bf16", "fp16") else KEEP


def _device_map(value: Any, config: dict[str, Any]) -> Any:
    return None if value is not None else KEEP


def _episode(config: dict[str, Any]) -> tuple[int, int] | None:
    """GRPO's generation arithmetic at the rehearsal's size: (steps_per_generation,
    gradient_accumulation_steps) for one prompt's group of `num_generations` rollouts per generation
    (micro-batches of `MICRO_BATCH` on `PROCESSES`), with the recipe's ratio of accumulation steps to
    generation steps (one gradient step per episode stays one). None for the other trainers."""
    training = config.get("training") or {}
    generations = training.get("num_generations")
    if not generations:
        return None
    per_step = min(int(training.get("per_device_train_batch_size") or 8), MICRO_BATCH) * PROCESSES
    spg = int(generations) // math.gcd(int(generations), per_step)
    real_gas = int(training.get("gradient_accumulation_steps") or 1)
    real_spg = int(training.get("steps_per_generation") or real_gas)
    return spg, max(1, spg * real_gas // real_spg)


def _accumulation(value: Any, config: dict[str, Any]) -> Any:
    episode = _episode(config)
    return episode[1] if episode else (1 if value is not None else KEEP)


def _generation_steps(value: Any, config: dict[str, Any]) -> Any:
    episode = _episode(config)
    return episode[0] if episode else KEEP


# Recipe key name (its last dotted part) -> how a rehearsal sets it. Nothing else changes size.
SIZE_RULE: dict[str, Rule] = {
    # rows
    "max_rows": _cap(ROWS),
    "total": _cap(ROWS),
    "limit": _cap(ROWS),
    # lengths
    "max_new_tokens": _cap(TOKENS),
    "max_completion_length": _cap(TOKENS),
    "max_length": _cap(LENGTH),
    # steps: max_steps wins over num_train_epochs in the trainer, which stays as the recipe says
    "max_steps": _set(STEPS),
    "save_steps": _set(1),
    # batch sizes
    "per_device_train_batch_size": _cap(MICRO_BATCH),
    "gradient_accumulation_steps": _accumulation,
    "steps_per_generation": _generation_steps,
    "dataloader_num_workers": _set(0),
    # generation backend: vLLM -> transformers, no tensor parallelism
    "backend": _backend,
    "backend_kwargs": _backend_kwargs,
    "use_vllm": _set(False),
    "vllm_tensor_parallel_size": _tensor_parallel,
    # device: the CPU, in fp32
    "use_cpu": _set(True),
    "bf16": _set(False),
    "dtype": _dtype,
    "device_map": _device_map,
}
# The keys a training stage gets even where its recipe leaves them to the default.
ADDED_TRAINING_KEYS = ("max_steps", "save_steps", "use_cpu", "bf16", "dataloader_num_workers")
# What `accelerate launch` is given on top of the stage's own config file (its ZeRO stage is kept).
LAUNCH_OVERRIDES = {"num_processes": PROCESSES, "mixed_precision": "no"}


@dataclass
class Rehearsal:
    """What a stage's `rehearsal_substitutions` hook uses: where stand-ins go, the tiny models, which
    paths the pipeline makes itself (those are never substituted)."""

    root: Path  # the rehearsal's output_root
    internal: set[str] = field(default_factory=set)  # every stage's output folder
    rows: int = ROWS
    seed: int = SEED
    models: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def standins(self) -> Path:
        return self.root / "_standins"

    def source_dir(self, stage_id: str) -> Path:
        """The folder a stage's stand-in data goes to."""
        return self.standins / "data" / stage_id

    def is_internal(self, value: Any) -> bool:
        """Whether `value` is (under) a folder this pipeline's stages write."""
        text = str(value)
        return any(text == p or text.startswith(p.rstrip("/") + "/") for p in self.internal)

    def model(self, name: str, role: str) -> str:
        """The tiny stand-in of model `name` in `role` (policy, verifier, reward_model), built once."""
        key = (name, role)
        if key not in self.models:
            self.models[key] = str(build_standin_model(name, role, self.standins / "models", self.seed))
        return self.models[key]

    def model_substitution(self, config: dict[str, Any], key: str, role: str) -> dict[str, Any]:
        """{key: stand-in} when the model the config names at `key` is external, else {}."""
        value = get_dotted(config, key)
        if not value or self.is_internal(value):
            return {}
        return {key: self.model(str(value), role)}


def default_root(pipeline: str | Path) -> Path:
    """Where a rehearsal of `pipeline` writes unless --output-root says: outputs/rehearsal/<name>."""
    import yaml

    spec = yaml.safe_load(Path(pipeline).read_text()) or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return Path("outputs") / "rehearsal" / str(name or Path(pipeline).parent.name)


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k != "backend_kwargs":
            out.update(_leaves(v, key + "."))
        else:
            out[key] = v
    return out


def size_substitutions(stage: PlannedStage) -> dict[str, Any]:
    """{dotted key: rehearsal value} that `SIZE_RULE` gives the stage's config."""
    config = stage.config
    leaves = _leaves(config)
    if stage.stage_class.output_dir_key.startswith("training."):
        for name in ADDED_TRAINING_KEYS:
            leaves.setdefault(f"training.{name}", None)
    out: dict[str, Any] = {}
    for key, value in leaves.items():
        rule = SIZE_RULE.get(key.rsplit(".", 1)[-1])
        if rule is None:
            continue
        new = rule(value, config)
        if new is not KEEP and new != value:
            out[key] = new
    return out


def rehearse_plan(stages: list[PlannedStage], root: Path) -> Rehearsal:
    """Turn a planned pipeline into its rehearsal, in place: sizes by `SIZE_RULE`, sources by each
    stage's hook (stand-ins written now, under `root`/_standins), 2 fp32 processes per distributed
    stage, and each stage's substitutions kept for its stage.json (`write_records`)."""
    rehearsal = Rehearsal(root=root, internal={str(s.output_dir) for s in stages})
    for stage in stages:
        subs: dict[str, list[Any]] = {}
        for key, new in {
            **size_substitutions(stage),
            **stage.stage_class.rehearsal_substitutions(stage.id, stage.config, rehearsal),
        }.items():
            subs[key] = [get_dotted(stage.config, key), new]
            set_dotted(stage.config, key, new)
        if stage.launcher != "python":
            for option, value in LAUNCH_OVERRIDES.items():
                subs[f"launch.{option}"] = [_launch_value(stage, option), value]
            stage.num_processes = PROCESSES
            stage.launch_args = ["--mixed_precision", "no"]
        stage.rehearsal = {"substitutions": subs}
        stage.input_model = _chained(stage, stage.stage_class.input_model_key, stage.input_model)
        stage.input_data = _chained(stage, stage.stage_class.input_data_key, stage.input_data)
    return rehearsal


def _chained(stage: PlannedStage, key: str | None, current: str | None) -> str | None:
    return str(get_dotted(stage.config, key)) if key and get_dotted(stage.config, key) else current


def _launch_value(stage: PlannedStage, option: str) -> Any:
    import yaml

    if option == "num_processes" and stage.num_processes is not None:
        return stage.num_processes
    if stage.accelerate_config is not None and stage.accelerate_config.is_file():
        return (yaml.safe_load(stage.accelerate_config.read_text()) or {}).get(option)
    return None


def write_record(stage: PlannedStage) -> dict[str, str]:
    """Write the stage's rehearsal record into its output folder; the environment that hands it to
    the stage process (`stages.base.run_stage` copies it into stage.json)."""
    path = stage.output_dir / REHEARSAL_FILE
    path.write_text(json.dumps(stage.rehearsal, indent=2, default=str))
    return {REHEARSAL_ENV: str(path.resolve())}


def differing_keys(real: dict[str, Any], rehearsed: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Every dotted key whose value differs between two configs ({key: (real, rehearsed)})."""
    a, b = _leaves(real), _leaves(rehearsed)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
