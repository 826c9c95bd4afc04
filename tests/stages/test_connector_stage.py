"""Connector-only stage: only the connector changes, the optimizer holds only it, output loads by path."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import CPU_TRAINING, stage_argv
from transformers import AutoModelForImageTextToText

from skywork_rl.families.parts import resolve_connector
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.connector import ConnectorStage


def _argv(model, data, out, steps=2, extra=()):
    training = dict(max_steps=steps, per_device_train_batch_size=2, learning_rate="1e-2")
    training.update(lr_scheduler_type="constant", logging_steps=1, save_strategy="no")
    return stage_argv(model, data, out, *extra, **training, **CPU_TRAINING, max_length=512)


def _params(path):
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    return model, dict(model.named_parameters())


# internvl (the papers' family) in the fast lane; the other two families' connectors under `slow`
@pytest.mark.parametrize(
    "arch",
    [
        "internvl",
        pytest.param("llava", marks=pytest.mark.slow),
        pytest.param("qwen2_5_vl", marks=pytest.mark.slow),
    ],
)
def test_connector_stage_changes_only_connector_tensors(
    arch, tiny_model_dir, synthetic_dataset_dir, tmp_path
):
    src = tiny_model_dir[arch]
    out = tmp_path / f"connector-{arch}"
    config = parse_stage_config(
        ConnectorStage,
        _argv(
            src,
            synthetic_dataset_dir,
            out,
            extra=[
                "--mix.caps={synthetic/count_shapes: 4, synthetic/digit_arithmetic: 4, synthetic/tallest_bar: 4}"
            ],
        ),
    )
    metrics = run_stage(ConnectorStage(config))

    before_model, before = _params(src)
    _, after = _params(out)  # the output is a full checkpoint that loads by path
    connector = set(resolve_connector(before_model))
    assert set(before) == set(after)
    for name in before:
        if name not in connector:
            assert torch.equal(before[name], after[name]), f"{arch}: non-connector tensor {name} changed"
    assert any(not torch.equal(before[n], after[n]) for n in connector), f"{arch}: connector did not train"

    n_connector = sum(before[n].numel() for n in connector)
    assert metrics["connector/trainable_params"] == n_connector == metrics["trainable_params"]
    # AdamW keeps two fp32 moments per trainable element (plus a scalar step per tensor)
    assert (
        8 * n_connector <= metrics["connector/optimizer_state_bytes"] <= 8 * n_connector + 8 * len(connector)
    )
    assert metrics["mix/synthetic/count_shapes"] == 4.0
    assert (
        json.loads((out / "stage.json").read_text())["metrics"]["connector/trainable_params"] == n_connector
    )


def test_optimizer_holds_exactly_the_connector_parameters(tiny_internvl, synthetic_dataset_dir, tmp_path):
    from skywork_rl.families.parts import load_from_args
    from skywork_rl.trainers.connector import ConnectorOnlyTrainer, optimizer_parameters

    config = parse_stage_config(ConnectorStage, _argv(tiny_internvl, synthetic_dataset_dir, tmp_path / "o"))
    model, processor = load_from_args(config.model)
    from skywork_rl.stages.connector import load_domains

    train = next(iter(load_domains(config.data).values())).select_columns(["prompt", "completion", "images"])
    names = resolve_connector(model)
    trainer = ConnectorOnlyTrainer(
        model=model,
        args=config.training,
        train_dataset=train,
        processing_class=processor,
        connector_names=names,
    )
    held = {id(p) for p in optimizer_parameters(trainer.create_optimizer())}
    connector_ids = {id(p) for n, p in model.named_parameters() if n in set(names)}
    assert held == connector_ids


def test_stray_trainable_llm_parameter_is_refused(tiny_internvl, synthetic_dataset_dir, tmp_path):
    from skywork_rl.families.parts import load_from_args
    from skywork_rl.stages.connector import load_domains
    from skywork_rl.trainers.connector import ConnectorOnlyError, ConnectorOnlyTrainer

    config = parse_stage_config(ConnectorStage, _argv(tiny_internvl, synthetic_dataset_dir, tmp_path / "o"))
    model, processor = load_from_args(config.model)
    train = next(iter(load_domains(config.data).values())).select_columns(["prompt", "completion", "images"])
    model.get_parameter("model.language_model.norm.weight").requires_grad_(True)  # a plugin re-enabling it
    trainer = ConnectorOnlyTrainer(
        model=model,
        args=config.training,
        train_dataset=train,
        processing_class=processor,
        connector_names=resolve_connector(model),
    )
    with pytest.raises(ConnectorOnlyError, match=r"model\.language_model\.norm\.weight"):
        trainer.create_optimizer()


def test_recipe_connector_pattern_overrides_the_registry(tiny_internvl, synthetic_dataset_dir, tmp_path):
    """A recipe's own pattern decides the connector (here: only the projector's second linear layer)."""
    out = tmp_path / "pattern"
    pattern = r"model\.multi_modal_projector\.linear_2\."
    argv = _argv(
        tiny_internvl, synthetic_dataset_dir, out, extra=[f"--model.part_patterns={{connector: '{pattern}'}}"]
    )
    run_stage(ConnectorStage(parse_stage_config(ConnectorStage, argv)))
    _, before = _params(tiny_internvl)
    _, after = _params(out)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(n.startswith("model.multi_modal_projector.linear_2.") for n in changed)


def test_other_trainable_parts_are_rejected(tiny_internvl, synthetic_dataset_dir, tmp_path):
    argv = _argv(
        tiny_internvl, synthetic_dataset_dir, tmp_path / "o", extra=["--model.trainable=[connector, llm]"]
    )
    with pytest.raises(ValueError, match=r"trains only \[connector\]"):
        ConnectorStage(parse_stage_config(ConnectorStage, argv)).run()


def test_text_only_rows_are_refused_naming_the_domain(synthetic_dataset_dir, tmp_path):
    import datasets

    from skywork_rl.errors import DataError

    rows = datasets.load_from_disk(str(synthetic_dataset_dir))
    index = rows["source"].index("synthetic/tallest_bar")
    rows.map(lambda r, i: {"images": [] if i == index else r["images"]}, with_indices=True).save_to_disk(
        str(tmp_path / "data")
    )
    config = parse_stage_config(ConnectorStage, _argv("unused-model", tmp_path / "data", tmp_path / "o"))
    with pytest.raises(
        DataError,
        match=rf"domain 'synthetic/tallest_bar' of data.train .* 1 of \d+ rows without an image "
        rf"\(e.g. \['{rows[index]['id']}'\]\).*no path to the connector",
    ):
        ConnectorStage(config).load_data()
