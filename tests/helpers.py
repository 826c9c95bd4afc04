"""What several test modules share: launching `skywork-rl` and `accelerate launch` in a fresh
process, the text-only variant of a synthetic row, and the least stage (`OneRowStage`).

Imported as ``helpers`` (pytest puts tests/ on ``sys.path`` for tests/conftest.py); fixtures live in
conftest.py, plain functions here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from skywork_rl.stages.base import Stage, StageRefused

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "recipes" / "accelerate"
TINY_RECIPES = REPO / "recipes" / "tiny"
BENCHMARKS = REPO / "benchmarks"


def cli_env(*paths: str | Path | None) -> dict[str, str]:
    """The environment of a `skywork-rl` subprocess: this checkout on ``PYTHONPATH`` (after ``paths``;
    None: none), ``SKYWORK_RL_DEBUG`` unset so an error is the one line a user sees."""
    path = [*(str(p) for p in paths if p is not None), str(REPO)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    env.pop("SKYWORK_RL_DEBUG", None)
    return env


def run_cli(args: Sequence[str], cwd: str | Path | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
    """``python -m skywork_rl.cli ARGS`` in ``cwd`` under `cli_env` (``env=`` replaces it), text output
    captured, killed after 600 s (``timeout=`` replaces that); other keywords go to `subprocess.run`."""
    kwargs.setdefault("env", cli_env())
    kwargs.setdefault("timeout", 600)
    return subprocess.run(
        [sys.executable, "-m", "skywork_rl.cli", *args], capture_output=True, text=True, cwd=cwd, **kwargs
    )


def one_error(stderr: str) -> str:
    """The one ``error:`` line a failed command's stderr must hold (no traceback: that is for
    ``--debug``); a second error line or a traceback fails the test."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return errors[0]


def cli_error(args: Sequence[str], cwd: str | Path | None = None, **kwargs: Any) -> tuple[int, str]:
    """`run_cli`'s exit code and its `one_error` line."""
    result = run_cli(args, cwd, **kwargs)
    return result.returncode, one_error(result.stderr)


def launch_env(*paths: str | Path) -> dict[str, str]:
    """The environment of an ``accelerate launch`` of this checkout: one torch thread per process (the
    processes share 2 cores), this checkout on ``PYTHONPATH`` (before ``paths``)."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO), *map(str, paths)]))


def accelerate_command(config: str | Path, *rest: str, num_processes: int = 2) -> list[str]:
    """``accelerate launch`` of ``rest`` under ``config`` (a file name in recipes/accelerate or a path) on
    ``num_processes`` CPU processes, in fp32 (bf16 is a GPU setting)."""
    path = config if isinstance(config, Path) else ACCELERATE / config
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(path),
        *("--num_processes", str(num_processes), "--mixed_precision", "no"),
        *rest,
    ]


def tiny_stage(stage: str, recipe: str, *args: str) -> list[str]:
    """``stage STAGE --config recipes/tiny/RECIPE ARGS``: `run_cli`'s arguments for a tiny stage."""
    return ["stage", stage, "--config", str(TINY_RECIPES / recipe), *args]


def cli_stage(stage: str, recipe: str, *args: str) -> list[str]:
    """``-m skywork_rl.cli`` `tiny_stage`: what `accelerate_command` runs."""
    return ["-m", "skywork_rl.cli", *tiny_stage(stage, recipe, *args)]


def without_images(row: dict[str, Any]) -> dict[str, Any]:
    """A synthetic row made text-only: its prompt without the image parts, no images."""
    prompt = [
        {**m, "content": [c for c in m["content"] if c["type"] != "image"]}
        if isinstance(m["content"], list)
        else m
        for m in row["prompt"]
    ]
    return {**row, "prompt": prompt, "images": []}


def save_mixed_rows(source: Path, out: Path, images: int, text_only: int) -> Path:
    """The rows saved at ``source`` in blocks of ``images`` rows as they are then ``text_only`` rows made
    `without_images`, saved at ``out``. Read in order with one block per process, process 0 only ever
    gets image rows and process 1 only text-only ones."""
    import datasets

    block = images + text_only

    def mix(row: dict[str, Any], index: int) -> dict[str, Any]:
        return row if index % block < images else without_images(row)

    datasets.load_from_disk(str(source)).map(mix, with_indices=True).save_to_disk(str(out))
    return out


def tiny_grpo_trainer(
    model_dir: Path,
    out: Path,
    reward_funcs: Any,
    *,
    rows: int,
    trainer_class: type | None = None,
    **options: Any,
) -> Any:
    """An `SSBGRPOTrainer` (or ``trainer_class``) of the tiny checkpoint at ``model_dir`` on ``rows``
    synthetic rows, in-process on CPU: 2 steps of 4 prompts x 4 generations, no KL, no saving, seed 0;
    ``options`` override any `SkyworkGRPOConfig` field."""
    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.miniature.synthetic import build_dataset
    from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer
    from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

    model, processor = load_model_and_processor(str(model_dir))
    config = dict(
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        beta=0.0,
        bf16=False,
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
        dataloader_num_workers=0,
    )
    config.update(options)
    dataset = build_dataset(rows, seed=0).select_columns(["prompt", "images", "solution"])
    return (trainer_class or SSBGRPOTrainer)(
        model=model,
        reward_funcs=reward_funcs,
        args=SkyworkGRPOConfig(**config),
        train_dataset=dataset,
        processing_class=processor,
    )


def stage_argv(model: Any, data: Any, out: Any, *extra: str, **training: Any) -> list[str]:
    """A training stage's command-line overrides: the model, the training data, the output folder,
    each ``training`` keyword as ``--training.KEY=VALUE`` (True/False written true/false), then ``extra``."""

    def text(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    options = [f"--training.{key}={text(value)}" for key, value in training.items()]
    return [
        f"--model.name_or_path={model}",
        f"--data.train={data}",
        f"--training.output_dir={out}",
        *options,
        *extra,
    ]


CPU_TRAINING = {"bf16": False, "use_cpu": True, "report_to": "[]"}
"""`stage_argv` keywords of a tiny training stage on CPU that reports nowhere."""


def benchmark_module(name: str) -> ModuleType:
    """benchmarks/NAME.py freshly imported as ``NAME``, with benchmarks/ on ``sys.path`` as when the script
    runs (so its ``from miniature import ...`` resolves)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def recorded_argv(setup: dict[str, Any], out: Path, **override: Any) -> list[str]:
    """The command line that reproduces a benchmark's recorded `setup` (argparse's dests back to
    options), `override` replacing some: how the recorded-results tests re-run a prefix."""
    argv = ["--out", str(out)]
    for key, value in {**setup, **override}.items():
        option = "--" + key.replace("_", "-")
        if key == "out" or value is None or value is False:
            continue
        if value is True:
            argv.append(option)
        elif isinstance(value, list):
            argv += [option, *map(str, value)]
        else:
            argv += [option, str(value)]
    return argv


def rerun_ssb_prefix(recorded: dict[str, Any], out: Path, variant: str, updates: int) -> dict:
    """Re-run the first `updates` updates of `variant`'s first recorded seed of an `ssb_learning.py`
    record, at its recorded settings, into `out`; require the recorded baselines, start accuracy and
    per-update informative shares exactly. The re-run variant. The script is imported here, as the
    module `sys.modules` holds: its process pool pickles `run_one` by name, which fails for a module
    object another test has since replaced (`benchmark_module`)."""
    ssb_learning = benchmark_module("ssb_learning")
    setup, want = recorded["setup"], recorded["variants"][variant]
    batch = setup["prompts_per_step"] * setup["num_generations"]
    argv = recorded_argv(
        setup, out, variants=[variant], seeds=1, first_seed=want["seeds"][0], rollouts=updates * batch, jobs=1
    )
    assert ssb_learning.main(argv) == 0
    rerun = json.loads((out / "ssb_learning.json").read_text())
    for key in ("memorization_baseline", "chance_accuracy"):
        assert rerun[key] == recorded[key], key
    got = rerun["variants"][variant]
    assert got["heldout_curve"][0][0] == want["heldout_curve"][0][0]  # the start, measured the same
    assert got["informative_curve"][0] == want["informative_curve"][0][:updates]
    return got


def run_benchmark(name: str, *args: str) -> None:
    """``python benchmarks/NAME.py ARGS`` in a fresh process; a non-zero exit fails the test with its output."""
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *args], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]


FIRST_PARTY = ("skywork_rl", "data_prep", "eval")


def first_party_modules() -> list[str]:
    """Every module under skywork_rl/, data_prep/ and eval/ by dotted name (a package by its own name)."""
    names = []
    for package in FIRST_PARTY:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def fast_lane_gaps(loaded: Any) -> list[str]:
    """The first-party modules not in ``loaded`` (at the end of the fast lane: ``sys.modules``)."""
    return [name for name in first_party_modules() if name not in loaded]


@dataclass
class OneRowOptions:
    output_dir: str = ""
    refuse: bool = False  # run() refuses, as a stage does that finds its output taken


@dataclass
class OneRowConfig:
    opts: OneRowOptions = field(default_factory=OneRowOptions)


class OneRowStage(Stage):
    """The least stage: no model, no data; reports one row, or refuses with ``opts.refuse``."""

    name = "one-row"
    config_class = OneRowConfig
    output_dir_key = "opts.output_dir"
    input_model_key = None
    input_data_key = None

    def run(self) -> dict[str, float]:
        if self.config.opts.refuse:
            raise StageRefused("output exists; set overwrite")
        return {"rows": 1.0}


def one_row_stage(out: Path, *, refuse: bool = False, stage_class: type[OneRowStage] = OneRowStage) -> Stage:
    """A `OneRowStage` (or a subclass) writing into ``out``."""
    return stage_class(OneRowConfig(OneRowOptions(str(out), refuse)))
