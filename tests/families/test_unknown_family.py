"""A model the part registry does not know trains by `model.part_patterns` alone.

The tiny InternVL is saved under a new `model_type` that transformers knows (registered with the
Auto classes, as a plugin or a `trust_remote_code` model would be) but the registry does not: the
connector recipe that names its parts trains the connector and leaves every other tensor bitwise
as it was; without the patterns the stage stops before training with an error that names the fix.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import CPU_TRAINING, stage_argv
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    InternVLConfig,
    InternVLForConditionalGeneration,
)

from skywork_rl.families.parts import PART_REGISTRY, UnknownArchitectureError, resolve_parts
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.connector import ConnectorStage

NEW_TYPE = "skywork_test_unseen_vlm"
PATTERNS = (
    "{vision: 'model\\.vision_tower\\.', connector: 'model\\.multi_modal_projector\\.', "
    "llm: 'model\\.language_model\\.|lm_head\\.'}"
)


class UnseenVLMConfig(InternVLConfig):
    model_type = NEW_TYPE


class UnseenVLM(InternVLForConditionalGeneration):
    config_class = UnseenVLMConfig


@pytest.fixture(scope="module")
def unseen_model(tiny_internvl, tmp_path_factory):
    """The tiny InternVL checkpoint, re-typed as a model_type the part registry has never heard of."""
    AutoConfig.register(NEW_TYPE, UnseenVLMConfig, exist_ok=True)
    AutoModelForImageTextToText.register(UnseenVLMConfig, UnseenVLM, exist_ok=True)
    path = tmp_path_factory.mktemp("unseen") / "model"
    shutil.copytree(tiny_internvl, path)
    config = json.loads((path / "config.json").read_text())
    config["model_type"] = NEW_TYPE
    (path / "config.json").write_text(json.dumps(config))
    assert NEW_TYPE not in PART_REGISTRY
    return path


def _connector_argv(model, data, out, extra=()):
    caps = "--mix.caps={synthetic/count_shapes: 2, synthetic/digit_arithmetic: 2}"
    training = dict(max_steps=2, per_device_train_batch_size=2, learning_rate="1e-2", save_strategy="no")
    return stage_argv(model, data, out, caps, *extra, **training, **CPU_TRAINING, max_length=512)


@pytest.mark.slow
def test_unknown_model_trains_only_its_connector_with_recipe_part_patterns(
    unseen_model, synthetic_dataset_dir, tmp_path
):
    out = tmp_path / "connector"
    argv = _connector_argv(unseen_model, synthetic_dataset_dir, out, [f"--model.part_patterns={PATTERNS}"])
    metrics = run_stage(ConnectorStage(parse_stage_config(ConnectorStage, argv)))

    before = AutoModelForImageTextToText.from_pretrained(unseen_model, dtype=torch.float32)
    after = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    assert type(after) is UnseenVLM
    old, new = dict(before.named_parameters()), dict(after.named_parameters())
    connector = {n for n in old if n.startswith("model.multi_modal_projector.")}
    assert connector and metrics["trainable_params"] == sum(old[n].numel() for n in connector)
    for name in old:
        if name not in connector:
            assert torch.equal(old[name], new[name]), f"non-connector tensor {name} changed"
    assert any(not torch.equal(old[n], new[n]) for n in connector), "the connector did not train"


def test_unknown_model_without_part_patterns_stops_with_an_error_naming_the_fix(
    unseen_model, synthetic_dataset_dir, tmp_path
):
    out = tmp_path / "connector"
    stage = ConnectorStage(
        parse_stage_config(ConnectorStage, _connector_argv(unseen_model, synthetic_dataset_dir, out))
    )
    with pytest.raises(UnknownArchitectureError) as info:
        run_stage(stage)
    message = str(info.value)
    assert NEW_TYPE in message and "model.part_patterns" in message
    assert (
        "model.multi_modal_projector." in message
    )  # the model's own module names, to write the patterns from
    assert not (out / "model.safetensors").exists()


def test_part_patterns_resolve_every_parameter_of_the_unknown_model(unseen_model):
    model = AutoModelForImageTextToText.from_pretrained(unseen_model)
    patterns = {
        "vision": r"model\.vision_tower\.",
        "connector": r"model\.multi_modal_projector\.",
        "llm": r"model\.language_model\.|lm_head\.",
    }
    parts = resolve_parts(model, patterns)
    assert parts["other"] == [] and all(parts[p] for p in ("vision", "connector", "llm"))
    with pytest.raises(UnknownArchitectureError, match="the recipe names only \\['connector'\\]"):
        resolve_parts(model, {"connector": patterns["connector"]})
