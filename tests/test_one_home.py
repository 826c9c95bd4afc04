"""Issue #24 point 2, "one value, one home": each constant, default and recipe key is declared once."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from skywork_rl.generation.protocol import SamplingParams

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("skywork_rl", "data_prep", "eval")


def _module_string_constants() -> dict[str, list[str]]:
    """value -> ["path:NAME", ...] of every module-level `NAME = "literal"` in the first-party packages."""
    found: dict[str, list[str]] = defaultdict(list)
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if (
                    isinstance(node, ast.Assign)
                    and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id.lstrip("_").isupper()
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    found[node.value.value].append(f"{path.relative_to(ROOT)}:{node.targets[0].id}")
    return found


def test_each_module_string_constant_is_defined_once() -> None:
    repeated = {value: where for value, where in _module_string_constants().items() if len(where) > 1}
    assert not repeated, f"string constants defined in several modules (import one instead): {repeated}"


def test_recipe_giving_training_reward_weights_fails_naming_rewards_reward_weights(tmp_path: Path) -> None:
    from skywork_rl.stages.parsing import RecipeError, parse_stage_config
    from skywork_rl.stages.registry import get_stage_class

    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(
        "rewards:\n  reward_funcs: [accuracy, format]\ntraining:\n  reward_weights: [0.8, 0.2]\n"
    )
    try:
        parse_stage_config(get_stage_class("grpo"), ["--config", str(recipe)], source=str(recipe))
    except RecipeError as exc:
        message = str(exc)
    else:
        raise AssertionError("a GRPO recipe setting training.reward_weights parsed")
    assert "\n" not in message and str(recipe) in message
    assert "training.reward_weights" in message and "rewards.reward_weights" in message


def test_grpo_stage_hands_rewards_reward_weights_to_trl(tmp_path: Path) -> None:
    from skywork_rl.stages.parsing import parse_stage_config
    from skywork_rl.stages.registry import get_stage_class

    stage_class = get_stage_class("grpo")
    argv = [
        "--rewards.reward_funcs=[accuracy, format]",
        "--rewards.reward_weights=[0.8, 0.2]",
        "--training.use_cpu=true",
    ]
    stage = stage_class(parse_stage_config(stage_class, [*argv, f"--training.output_dir={tmp_path}"]))
    stage.setup()
    assert stage.config.training.reward_weights == [0.8, 0.2]


def _fail(*args: object, **kwargs: object) -> None:
    raise AssertionError("a temporary file was made")


def test_pipeline_stage_config_is_parsed_once_in_memory_with_no_temporary_file(monkeypatch, tmp_path) -> None:
    import tempfile

    from skywork_rl.runner.pipeline import run_pipeline
    from skywork_rl.stages import parsing

    parsed: list[str] = []
    build = parsing.build_parser
    monkeypatch.setattr(parsing, "build_parser", lambda cls: parsed.append(cls.name) or build(cls))
    monkeypatch.setattr(tempfile, "mkstemp", _fail)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", _fail)
    pipeline = ROOT / "recipes" / "tiny" / "pipeline.yaml"
    report = run_pipeline(pipeline, dry_run=True, output_root=str(tmp_path / "out"))
    # validate, the checks, preflight and the fingerprints all read the one parse of each stage
    assert len(parsed) == len(report["stages"])


def _parsed_in_memory_and_from_recipe_file(pipeline: Path, tmp_path: Path) -> None:
    import yaml

    from skywork_rl.records.fingerprint import config_hash
    from skywork_rl.runner.plan import plan_pipeline
    from skywork_rl.stages.parsing import parse_namespace, resolved_dict

    _, stages = plan_pipeline(pipeline, str(tmp_path / "out"))
    for stage in stages:
        recipe = tmp_path / f"{stage.id}.yaml"
        recipe.write_text(yaml.safe_dump(stage.config, sort_keys=False))  # what the runner writes
        _, namespace = parse_namespace(stage.stage_class, ["--config", str(recipe)], str(recipe))
        assert resolved_dict(namespace) == stage.resolved, f"{pipeline}: stage {stage.id}"
        # The stage's process records this hash; the runner skips the stage only if its own matches.
        in_process = config_hash(stage.stage_class, resolved_dict(namespace))
        assert in_process == config_hash(stage.stage_class, stage.resolved), f"{pipeline}: stage {stage.id}"


def test_in_memory_parse_of_a_stage_equals_its_process_parsing_its_recipe_file(tmp_path: Path) -> None:
    _parsed_in_memory_and_from_recipe_file(ROOT / "recipes" / "tiny" / "pipeline.yaml", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "pipeline", sorted((ROOT / "recipes").glob("*/pipeline*.yaml")), ids=lambda p: p.parent.name
)
def test_every_shipped_pipeline_parses_in_memory_as_its_stages_parse_their_recipe_files(
    pipeline: Path, tmp_path: Path
) -> None:
    _parsed_in_memory_and_from_recipe_file(pipeline, tmp_path)


def test_preflight_of_a_recipe_parses_it_as_its_stage_does(tmp_path: Path, capsys) -> None:
    from skywork_rl.preflight.command import main

    recipe = tmp_path / "grpo.yaml"
    recipe.write_text("training:\n  per_device_train_batch_sise: 4\n")
    assert main([str(recipe), "--gpus", "8", "--gpu-memory", "80GB", "--allow-unchecked"]) == 2
    assert "per_device_train_batch_sise" in capsys.readouterr().err


# What turns sampling settings into completions (the engine's own seed, `VLLMBackend(seed=...)`, and
# the per-request seed derivation take a seed of their own, not a sampling setting).
SAMPLING_ENTRY_POINTS = {"generate", "generate_completions", "_generate_batch", "sampling_kwargs"}


def test_generation_backends_take_their_sampling_settings_from_one_sampling_params() -> None:
    """The protocol, both backends and vLLM's request builder name no sampling setting (nor its
    default) of their own: `SamplingParams` is their one home, passed whole."""
    from dataclasses import fields

    settings = {f.name for f in fields(SamplingParams)}
    restated = []
    modules = sorted((ROOT / "skywork_rl" / "generation").glob("*.py"))
    assert len(modules) >= 5  # protocol, both backends, make_backend, vLLM's request builder
    for path in modules:
        module = path.name
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in SAMPLING_ENTRY_POINTS:
                params = node.args.args + node.args.kwonlyargs
                restated += [f"{module}:{node.name}({a.arg})" for a in params if a.arg in settings]
    assert not restated, f"sampling settings restated outside SamplingParams: {restated}"


def _measures_of_sampled_rollouts() -> list:
    from eval.select import measure_checkpoint
    from skywork_rl.callbacks.critical_entropy import CriticalEntropyCallback
    from skywork_rl.callbacks.entropy import rollout_critical_entropy
    from skywork_rl.miniature.heldout import evaluate_heldout, heldout_result

    return [
        rollout_critical_entropy,
        CriticalEntropyCallback.__init__,
        measure_checkpoint,
        evaluate_heldout,
        heldout_result,
    ]


def test_probe_and_heldout_measures_take_one_sampling_params_not_its_settings() -> None:
    """Critical-token entropy (callback, `select`) and held-out accuracy take ``sampling=``, a whole
    `SamplingParams`, and restate none of its settings as keywords of their own."""
    import inspect
    from dataclasses import fields

    settings = {f.name for f in fields(SamplingParams)}
    for measure in _measures_of_sampled_rollouts():
        params = set(inspect.signature(measure).parameters)
        assert "sampling" in params and not params & settings, f"{measure.__qualname__}: {sorted(params)}"


def test_measures_sample_as_they_did_when_given_no_sampling() -> None:
    """The defaults the keyword lists had: probes at temperature 1 and top-p 1 (256 tokens, the
    training callback 1024), held-out greedy at 64 tokens (SamplingParams' top-p)."""
    from skywork_rl.callbacks.entropy import probe_sampling
    from skywork_rl.miniature.heldout import HeldoutArguments

    assert probe_sampling() == SamplingParams(max_new_tokens=256, temperature=1.0, top_p=1.0, seed=0)
    assert probe_sampling(1024) == SamplingParams(max_new_tokens=1024, temperature=1.0, top_p=1.0, seed=0)
    assert HeldoutArguments().sampling == SamplingParams(max_new_tokens=64, temperature=0.0, seed=0)
