"""A new model family is one file (a `Family`) plus one `register_family` line: its part patterns,
capability limits, tiny recipe and quirks (prefix-LM, gated vision MLP) all resolve from that one registration."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

import pytest
from torch import nn

from skywork_rl.families.capabilities import FAMILY_LIMITS, is_prefix_lm, missing_capabilities
from skywork_rl.families.parts import PART_REGISTRY, resolve_parts
from skywork_rl.families.registry import FAMILIES, FAMILY_REGISTRY, family_of, register_family
from skywork_rl.plugins import RegistryError
from skywork_rl.preflight.shapes import vision_params

FAMILY_FILE = textwrap.dedent(
    """
    import dataclasses

    from skywork_rl.families.base import Family, Limit, PartPatterns
    from skywork_rl.families.llava import LLAVA

    ONE_FILE = Family(
        "one_file_vlm",
        parts=PartPatterns(vision=(r"eyes\\.",), connector=(r"bridge\\.",), llm=(r"brain\\.",)),
        limits={"multi_image": Limit(reason="it sees one image at a time", fix="one image per row")},
        tiny=dataclasses.replace(LLAVA, arch="one_file_vlm", description="a test family"),
        prefix_lm=True,
        vision_gated_mlp=True,
    )
    """
)


class _OneFileModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.config = type("Config", (), {"model_type": "one_file_vlm"})()
        self.eyes = nn.Linear(2, 2)
        self.bridge = nn.Linear(2, 2)
        self.brain = nn.Linear(2, 2)


@pytest.fixture
def one_file_family(tmp_path, monkeypatch):
    (tmp_path / "one_file_family.py").write_text(FAMILY_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "one_file_family", raising=False)
    register_family("one_file_vlm", "one_file_family:ONE_FILE")
    yield
    FAMILY_REGISTRY.unregister("one_file_vlm")


def test_a_family_is_one_file_plus_one_registration_line(one_file_family):
    assert "one_file_family" not in sys.modules  # registering imported nothing
    assert "one_file_vlm" in PART_REGISTRY
    parts = resolve_parts(_OneFileModel())
    assert (parts["vision"], parts["connector"], parts["llm"]) == (
        ["eyes.weight", "eyes.bias"],
        ["bridge.weight", "bridge.bias"],
        ["brain.weight", "brain.bias"],
    )
    assert list(missing_capabilities("one_file_vlm", ["multi_image", "text_only_inputs"])) == ["multi_image"]
    assert FAMILY_LIMITS["one_file_vlm"]["multi_image"].fix == "one image per row"
    assert FAMILIES["one_file_vlm"].description == "a test family"
    assert is_prefix_lm("one_file_vlm") and is_prefix_lm(_OneFileModel())
    vision = {"hidden_size": 4, "num_hidden_layers": 1, "intermediate_size": 8, "patch_size": 2}
    # preflight sizes its vision MLP as gated (3·h·I, not 2·h·I) from the family's vision_gated_mlp
    assert vision_params({**vision, "model_type": "one_file_vlm"}) - vision_params(vision) == 4 * 8


def test_a_family_registered_under_another_model_type_is_refused(tmp_path, monkeypatch):
    (tmp_path / "misnamed_family.py").write_text(FAMILY_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    register_family("not_its_model_type", "misnamed_family:ONE_FILE")
    try:
        with pytest.raises(RegistryError, match="whose model_type is 'one_file_vlm'"):
            family_of("not_its_model_type")
    finally:
        FAMILY_REGISTRY.unregister("not_its_model_type")


def test_every_built_in_family_lives_in_its_own_file():
    for model_type, target in FAMILY_REGISTRY.targets().items():
        if not target.startswith("skywork_rl."):
            continue  # a plugin's family
        family = family_of(model_type)
        assert family is not None and family.model_type == model_type
        assert target.startswith("skywork_rl.families.") and target.split(":")[0].count(".") == 2


def test_a_tiny_recipe_for_another_model_type_is_refused():
    from skywork_rl.families.base import Family
    from skywork_rl.families.llava import LLAVA, LLAVA_SPEC

    with pytest.raises(ValueError, match="give the recipe arch='llava_next'"):
        Family("llava_next", parts=LLAVA_SPEC.parts, tiny=dataclasses.replace(LLAVA))
