"""Model adapters: freezing by part, recipe overrides, clear errors."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText

from skywork_rl.families.parts import (
    PARTS,
    UnknownArchitectureError,
    resolve_connector,
    resolve_parts,
    set_trainable,
)

# Per-family part resolution (every family the registry names, built as real models) is in
# tests/families/test_tiny_families.py; these tests cover the generic behaviours.


@pytest.fixture(scope="module")
def models(tiny_model_dir) -> dict[str, torch.nn.Module]:
    return {
        arch: AutoModelForImageTextToText.from_pretrained(tiny_model_dir[arch])
        for arch in ("internvl", "llava")
    }


@pytest.mark.parametrize(
    "trainable", [["connector"], ["llm", "connector"], ["vision"], ["vision", "connector", "llm"]]
)
def test_set_trainable_unfreezes_only_the_chosen_parts(models, trainable):
    model = models["internvl"]
    counts = set_trainable(model, trainable)
    parts = resolve_parts(model)
    chosen = {n for p in trainable for n in parts[p]}
    for name, param in model.named_parameters():
        assert param.requires_grad == (name in chosen), name
    for part in PARTS:
        assert (counts[part] > 0) == (part in trainable)


def test_set_trainable_rejects_unknown_part(models):
    with pytest.raises(ValueError, match="unknown part"):
        set_trainable(models["internvl"], ["projector"])


def test_recipe_pattern_overrides_the_registry(models):
    model = models["llava"]
    only_first = resolve_connector(model, pattern=r"model\.multi_modal_projector\.linear_1\.")
    assert only_first and all(".linear_1." in n for n in only_first)


def test_unknown_architecture_error_names_the_fix(models):
    model = models["internvl"]
    model.config.model_type = "my_new_vlm"
    try:
        with pytest.raises(UnknownArchitectureError, match="part_patterns"):
            resolve_parts(model)
        patterns = {
            "vision": r"model\.vision_tower\.",
            "connector": r"model\.multi_modal_projector\.",
            "llm": r"model\.language_model\.|lm_head\.",
        }
        assert resolve_parts(model, patterns)["connector"]
    finally:
        model.config.model_type = "internvl"


def test_pattern_matching_nothing_is_an_error(models):
    with pytest.raises(UnknownArchitectureError, match="matched no parameter"):
        resolve_parts(models["internvl"], {"connector": r"no_such_module\."})


def test_remote_code_without_an_image_text_to_text_class_is_refused_clearly(tmp_path):
    import json

    from skywork_rl.families.parts import load_model_and_processor

    (tmp_path / "configuration_chat.py").write_text(
        "from transformers import PretrainedConfig\n\n\nclass ChatConfig(PretrainedConfig):\n"
        "    model_type = 'tiny_internvl_chat'\n"
    )
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "tiny_internvl_chat",
                "auto_map": {
                    "AutoConfig": "configuration_chat.ChatConfig",
                    "AutoModel": "modeling_chat.ChatModel",
                },
            }
        )
    )
    with pytest.raises(ValueError, match="not AutoModelForImageTextToText") as info:
        load_model_and_processor(str(tmp_path), trust_remote_code=True)
    assert "InternVL3-38B-hf" in str(info.value)
