"""One registry form (`skywork_rl.plugins`): lazy ``module:attr`` entries, clear unknown and duplicate errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skywork_rl.plugins import DuplicateEntryError, Registry, RegistryError, UnknownEntryError
from skywork_rl.rewards.registry import REWARDS, get_reward, register_reward
from skywork_rl.stages.registry import STAGES, get_stage_class, register_stage


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_an_unknown_name_is_an_error_listing_the_known_ones() -> None:
    registry = Registry("widget")
    registry.register("gear", "fractions:Fraction")
    registry.register("cog", "decimal:Decimal")
    with pytest.raises(UnknownEntryError, match=r"unknown widget 'sprocket'; registered widgets: cog, gear$"):
        registry.get("sprocket")
    with pytest.raises(KeyError, match="registered stages: .*connector.*grpo.*sft"):
        get_stage_class("no-such-stage")
    with pytest.raises(ValueError, match="unknown reward 'nope'; registered rewards: accuracy, format"):
        get_reward("nope")


def test_a_second_target_under_a_taken_name_is_refused() -> None:
    registry = Registry("widget")
    registry.register("gear", "fractions:Fraction")
    registry.register("gear", "fractions:Fraction")  # the same again: a no-op
    with pytest.raises(
        DuplicateEntryError, match="widget 'gear' is registered twice: fractions:Fraction and x:Y"
    ):
        registry.register("gear", "x:Y")
    assert registry.get("gear").__name__ == "Fraction"
    with pytest.raises(DuplicateEntryError, match="reward 'accuracy' is registered twice"):
        register_reward("accuracy", "someone_else.rewards:build")
    with pytest.raises(DuplicateEntryError, match="stage 'grpo' is registered twice"):
        register_stage("grpo", "someone_else.stages:GRPOStage")


def test_a_target_that_is_not_an_import_path_is_refused_when_registered() -> None:
    with pytest.raises(RegistryError, match="widget 'gear': 'fractions.Fraction' is not an import path"):
        Registry("widget").register("gear", "fractions.Fraction")


def test_a_registered_entry_is_imported_on_first_lookup_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module(
        tmp_path,
        monkeypatch,
        "lazy_entries",
        "from skywork_rl.stages.base import Stage\n"
        "class EchoStage(Stage):\n    name = 'echo'\n"
        "def build(args, device):\n    return lambda completions, **kw: [1.0] * len(completions)\n",
    )
    register_stage("lazy-echo", "lazy_entries:EchoStage")
    register_reward("lazy-one", "lazy_entries:build")
    try:
        assert "lazy_entries" not in sys.modules  # registering imported nothing
        assert "lazy-echo" in STAGES and "lazy-one" in REWARDS
        assert "lazy_entries" not in sys.modules
        assert get_stage_class("lazy-echo").__name__ == "EchoStage"
        assert "lazy_entries" in sys.modules
        assert get_reward("lazy-one")(completions=["a", "b"]) == [1.0, 1.0]
    finally:
        STAGES.unregister("lazy-echo")
        REWARDS.unregister("lazy-one")


def test_an_entry_whose_module_is_missing_names_the_entry_and_the_module() -> None:
    registry = Registry("widget")
    registry.register("ghost", "no_such_module_abc:Thing")
    with pytest.raises(ImportError, match="widget 'ghost': cannot import module 'no_such_module_abc'"):
        registry.get("ghost")


def test_a_model_family_registered_by_import_path_resolves_its_parts_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from torch import nn

    from skywork_rl.families.parts import PART_REGISTRY, register_architecture, resolve_parts

    _module(
        tmp_path,
        monkeypatch,
        "lazy_family",
        "from skywork_rl.families.parts import PartPatterns\n"
        "PARTS = PartPatterns(vision=(r'vis\\.',), connector=(r'proj\\.',), llm=(r'lm\\.',))\n",
    )
    model = nn.Module()
    model.config = SimpleNamespace(model_type="lazy_vlm")
    model.vis, model.proj, model.lm = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)
    register_architecture("lazy_vlm", "lazy_family:PARTS")
    try:
        assert "lazy_family" not in sys.modules and "lazy_vlm" in PART_REGISTRY
        parts = resolve_parts(model)
        assert "lazy_family" in sys.modules
        assert parts == {
            "vision": ["vis.weight", "vis.bias"],
            "connector": ["proj.weight", "proj.bias"],
            "llm": ["lm.weight", "lm.bias"],
            "other": [],
        }
        with pytest.raises(DuplicateEntryError, match="model family 'qwen2_vl' is registered twice"):
            register_architecture("qwen2_vl", "lazy_family:PARTS")
    finally:
        PART_REGISTRY.unregister("lazy_vlm")
