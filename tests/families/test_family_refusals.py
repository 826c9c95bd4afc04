"""What a family cannot do is refused in one line before training or generating, never trained wrong.

PaliGemma's processor cannot take a prompt without an image (beside one with an image it even
writes its `<bos>` into the middle of that prompt), nor mark the assistant's tokens: a stage given
such rows or options stops before its trainer or generator is built, naming the fix. The same rows
train on a chat family, so the refusal belongs to the family, not to the data.
"""

from __future__ import annotations

import json

import datasets
import pytest

from skywork_rl.families.capabilities import FamilyCapabilityError, data_needs
from skywork_rl.miniature.synthetic import build_dataset
from skywork_rl.stages.base import STAGE_JSON, parse_stage_config, run_stage
from skywork_rl.stages.registry import get_stage_class
from skywork_rl.stages.sft import SFTStage

TRAINING = (
    "--training.max_steps=1",
    "--training.per_device_train_batch_size=2",
    "--training.save_strategy=no",
    "--training.use_cpu=true",
    "--training.bf16=false",
    "--training.report_to=[]",
)


def _without_image(row):
    prompt = [
        {**m, "content": [part for part in m["content"] if part["type"] != "image"]} for m in row["prompt"]
    ]
    return {"prompt": prompt, "images": []}


@pytest.fixture(scope="module")
def some_rows_without_an_image(tmp_path_factory):
    """Six canonical rows, every other one text-only (as GSM8K traces mixed into visual data are)."""
    rows = build_dataset(6, seed=0)
    rows = rows.map(lambda row, i: _without_image(row) if i % 2 else {}, with_indices=True)
    path = tmp_path_factory.mktemp("mixed") / "data"
    rows.save_to_disk(str(path))
    return path


def _sft(model, data, out, *extra):
    argv = [f"--model.name_or_path={model}", f"--data.train={data}", f"--training.output_dir={out}"]
    return SFTStage(parse_stage_config(SFTStage, [*argv, *TRAINING, *extra], source="test"))


@pytest.mark.parametrize(
    ("data", "extra", "missing"),
    [
        ("some_rows_without_an_image", (), "take a prompt without an image"),
        ("synthetic_dataset_dir", ("--training.assistant_only_loss=true",), "mark the assistant's tokens"),
    ],
    ids=["rows-without-an-image", "assistant-only-loss"],
)
def test_paligemma_sft_is_refused_in_one_line_before_its_trainer_is_built(
    data, extra, missing, request, tiny_model_dir, tmp_path
):
    out = tmp_path / "sft"
    with pytest.raises(FamilyCapabilityError) as info:
        run_stage(_sft(tiny_model_dir["paligemma"], request.getfixturevalue(data), out, *extra))
    message = str(info.value)
    assert message.startswith(f"stage sft: paligemma models cannot {missing}") and "Fix: " in message
    assert "\n" not in message
    assert not (out / "model.safetensors").exists() and not list(out.glob("checkpoint-*"))
    assert json.loads((out / STAGE_JSON).read_text())["status"] == "failed"


def test_rows_without_an_image_train_on_a_chat_family(tiny_model_dir, some_rows_without_an_image, tmp_path):
    metrics = run_stage(_sft(tiny_model_dir["smolvlm"], some_rows_without_an_image, tmp_path / "sft"))
    assert metrics["global_step"] == 1


def test_paligemma_rollouts_on_rows_without_an_image_are_refused_before_generating(
    tiny_model_dir, some_rows_without_an_image, tmp_path
):
    stage_class = get_stage_class("pass-rate-filter")
    out = tmp_path / "rates"
    argv = [
        f"--input.path={some_rows_without_an_image}",
        f"--output.output_dir={out}",
        f"--model.name_or_path={tiny_model_dir['paligemma']}",
        "--filter={num_generations: 2, max_new_tokens: 4, low: 0.0, high: 1.0}",
    ]
    with pytest.raises(
        FamilyCapabilityError, match=r"^stage pass-rate-filter: paligemma models cannot take a"
    ):
        run_stage(stage_class(parse_stage_config(stage_class, argv, source="test")))
    assert not (out / "pass_rate_chunks").exists() and not (out / "scored").exists()


def test_data_needs_come_from_the_image_counts_and_the_prompt_format():
    rows = build_dataset(4, seed=0)
    assert data_needs(rows) == ["chat_template"]
    mixed = rows.map(lambda row, i: _without_image(row) if i == 2 else {}, with_indices=True)
    assert data_needs(mixed) == ["chat_template", "text_only_inputs"]
    assert data_needs(mixed.select([0, 1, 3])) == ["chat_template"]
    two = rows.map(lambda row: {"images": row["images"] * 2})
    assert data_needs(two) == ["chat_template", "multi_image"]
    text = datasets.Dataset.from_dict({"prompt": ["What is 2 + 3?"], "completion": [" 5"]})
    assert data_needs(text) == ["text_only_inputs"]
    single = rows.map(lambda row: {"image": row["images"][0]}, remove_columns=["images"])
    assert data_needs(single) == ["chat_template"]
