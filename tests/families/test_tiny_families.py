"""Every family the part registry names: a tiny checkpoint that loads by path as its real classes,
sees its image, generates through its chat template, and splits into vision / connector / llm."""

from __future__ import annotations

import pytest
import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES
from trl.data_utils import prepare_multimodal_messages

from skywork_rl.families.capabilities import FAMILY_LIMITS, FamilyCapabilityError, missing_capabilities
from skywork_rl.families.parts import (
    PART_REGISTRY,
    PARTS,
    check_family_capabilities,
    load_model_and_processor,
    resolve_connector,
    resolve_parts,
    set_trainable,
)
from skywork_rl.miniature.synthetic import generate_rows
from skywork_rl.miniature.tiny import TINY_ARCHS, family, main

ELEVEN = {
    "internvl",
    "llava",
    "llava_onevision",
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "idefics3",
    "smolvlm",
    "gemma3",
    "mistral3",
    "paligemma",
}
# The connector of each family, by transformers' own module (or parameter) names.
EXPECTED_CONNECTOR = {
    "internvl": ("model.multi_modal_projector",),
    "llava": ("model.multi_modal_projector",),
    "llava_onevision": ("model.multi_modal_projector", "model.image_newline"),
    "qwen2_vl": ("model.visual.merger",),
    "qwen2_5_vl": ("model.visual.merger",),
    "qwen3_vl": ("model.visual.merger", "model.visual.deepstack_merger_list"),
    "idefics3": ("model.connector",),
    "smolvlm": ("model.connector",),
    "gemma3": ("model.multi_modal_projector",),
    "mistral3": ("model.multi_modal_projector",),  # holds Pixtral's patch merger too
    "paligemma": ("model.multi_modal_projector",),
}
ROWS = list(generate_rows(2, seed=3))


def _load(tiny_model_dir, arch):
    return load_model_and_processor(str(tiny_model_dir[arch]), dtype="float32")


def _prompt_inputs(processor, rows):
    texts = [
        processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows
    ]
    return processor(text=texts, images=[r["images"] for r in rows], padding=True, return_tensors="pt")


def test_make_tiny_model_help_lists_all_eleven_registry_families(capsys):
    assert set(TINY_ARCHS) == ELEVEN
    assert set(PART_REGISTRY) >= ELEVEN
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    for arch in ELEVEN:
        assert f"  {arch} " in help_text, arch


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_tiny_family_loads_by_path_as_its_real_transformers_classes(tiny_model_dir, arch):
    path = tiny_model_dir[arch]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json"):
        assert (path / name).exists(), name
    model, processor = _load(tiny_model_dir, arch)
    assert model.config.model_type == arch
    assert type(model).__name__ == MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[arch]
    assert type(processor).__name__ == PROCESSOR_MAPPING_NAMES[arch]
    assert processor.tokenizer.eos_token == family(arch).chat.eos
    assert model.generation_config.eos_token_id == processor.tokenizer.eos_token_id
    assert model.config.get_text_config().vocab_size >= len(processor.tokenizer)


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_tiny_family_forward_sees_the_image_and_generates_through_its_chat_template(tiny_model_dir, arch):
    model, processor = _load(tiny_model_dir, arch)
    model.eval()
    text = processor.apply_chat_template(ROWS[0]["prompt"], add_generation_prompt=True, tokenize=False)
    assert text.endswith(family(arch).chat.generation_prompt)
    with torch.no_grad():
        inputs = processor(text=[text], images=[ROWS[0]["images"]], return_tensors="pt")
        other = processor(text=[text], images=[ROWS[1]["images"]], return_tensors="pt")
        logits = model(**inputs).logits[0, -1]
        other_logits = model(**other).logits[0, -1]
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        batch = _prompt_inputs(processor, ROWS)  # two prompts, left-padded, one image each
        batch_logits = model(**batch).logits
        text_only = None
        if not missing_capabilities(arch, ["text_only_inputs"]):
            text_only = model(**processor(text=["The answer is \\boxed{5}."], return_tensors="pt")).logits
    assert torch.isfinite(logits).all()
    assert not torch.equal(logits, other_logits), "the image does not reach the LLM"
    new = out.shape[1] - inputs["input_ids"].shape[1]
    assert new == 4 or out[0, -1] == processor.tokenizer.eos_token_id
    assert isinstance(processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :]), str)
    torch.testing.assert_close(batch_logits[0, -1], logits, atol=1e-3, rtol=1e-3)
    assert text_only is None or torch.isfinite(text_only).all()


def _assistant_mask_text(processor, row):
    """What the chat template's `{% generation %}` mask selects, decoded."""
    messages = prepare_multimodal_messages(row["prompt"] + row["completion"], images=row["images"])
    encoded = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = torch.as_tensor(encoded["input_ids"]).flatten()
    mask = torch.as_tensor(encoded["assistant_masks"]).flatten().bool()
    return processor.tokenizer.decode(ids[mask])


def _expected_assistant_text(arch, row):
    chat = family(arch).chat
    return chat.assistant[1] + row["completion"][0]["content"][0]["text"] + chat.eos


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_tiny_family_chat_template_masks_the_assistant_turn_with_think(tiny_model_dir, arch):
    _, processor = _load(tiny_model_dir, arch)
    row = ROWS[0]
    prompt = processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    full = processor.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    assert full.startswith(prompt)  # TRL cuts prompt-completion rows at this prefix
    assert "<think>" in full and "</think>" in full
    if not missing_capabilities(arch, ["assistant_only_loss"]):
        assert _assistant_mask_text(processor, row) == _expected_assistant_text(arch, row)


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_tiny_family_parts_cover_every_parameter_and_the_connector_trains_alone(tiny_model_dir, arch):
    model, _ = _load(tiny_model_dir, arch)
    parts = resolve_parts(model)
    all_names = [n for n, _ in model.named_parameters()]
    assert parts["other"] == []
    assert all(parts[p] for p in PARTS)
    assert sorted(n for p in PARTS for n in parts[p]) == sorted(all_names)

    expected = set()
    for prefix in EXPECTED_CONNECTOR[arch]:
        target = model.get_submodule(prefix) if prefix != "model.image_newline" else None
        expected |= {f"{prefix}.{n}" for n, _ in target.named_parameters()} if target else {prefix}
    assert set(resolve_connector(model)) == expected

    counts = set_trainable(model, ["connector"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected
    assert counts["connector"] == sum(p.numel() for n, p in model.named_parameters() if n in expected)
    assert counts["vision"] == counts["llm"] == 0


@pytest.mark.parametrize(
    ("arch", "need"), [(arch, need) for arch, limits in FAMILY_LIMITS.items() for need in limits]
)
def test_recorded_family_limits_are_real_and_refused_in_one_line(tiny_model_dir, arch, need):
    with pytest.raises(FamilyCapabilityError) as info:
        check_family_capabilities(arch, [need], where="stage sft")
    message = str(info.value)
    assert message.startswith(f"stage sft: {arch} models cannot") and "Fix:" in message
    assert "\n" not in message
    # The limit still holds in the installed transformers/TRL (else FAMILY_LIMITS is out of date).
    _, processor = _load(tiny_model_dir, arch)
    if need == "text_only_inputs":
        with pytest.raises(ValueError, match="images"):
            processor(text=["The answer is 5."], return_tensors="pt")
        # Beside a prompt with an image, one without gets the processor's <bos> inside its text.
        mixed = processor(
            text=["<image>Count.", "What is 2 + 3?"], images=[ROWS[0]["images"], []], padding=True
        )
        assert "What is 2 + 3?" not in processor.tokenizer.decode(mixed["input_ids"][1])
    elif need == "assistant_only_loss":
        assert _assistant_mask_text(processor, ROWS[0]) != _expected_assistant_text(arch, ROWS[0])
    else:
        pytest.fail(f"no check for the recorded limit {need!r}")
