"""Resume loads a checkpoint's weights into every trainer and tiny architecture, strictly; checkpoints are whole or skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import TrainerState

from skywork_rl.stages.training import last_complete_checkpoint, resolve_resume
from skywork_rl.trainers.resume import ResumeError
from skywork_rl.trainers.ssb_grpo_config import SkyworkGRPOConfig

TRAINERS = ("sft", "connector", "mpo", "grpo")
ARCHS = ("internvl", "llava", "qwen2_5_vl")


def constant_reward(completions: list, **kwargs) -> list[float]:
    return [1.0] * len(completions)


def _rows(kind: str) -> object:
    from skywork_rl.miniature.synthetic import build_dataset

    data = build_dataset(2, seed=0)
    if kind == "grpo":
        return data.select_columns(["prompt", "images", "solution"])
    if kind == "mpo":
        wrong = [[{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{-1}"}]}]] * len(data)
        return (
            data.rename_column("completion", "chosen")
            .add_column("rejected", wrong)
            .select_columns(["prompt", "chosen", "rejected", "images"])
        )
    return data.select_columns(["prompt", "completion", "images"])


def build_trainer(kind: str, model_dir: Path, out: Path, **overrides):
    """One of the four trainers the training stages use, on a tiny model, with the stage's freezing."""
    from trl import DPOConfig

    from skywork_rl.families.parts import load_model_and_processor, resolve_connector, set_trainable
    from skywork_rl.stages.sft import SkyworkSFTConfig

    model, processor = load_model_and_processor(str(model_dir))
    set_trainable(model, ["connector"] if kind == "connector" else ["llm", "connector"])
    common = dict(output_dir=str(out), bf16=False, use_cpu=True, report_to=[], seed=0, **overrides)
    kwargs = dict(model=model, train_dataset=_rows(kind), processing_class=processor)
    if kind == "sft":
        from skywork_rl.trainers.sft import SkyworkSFTTrainer

        return SkyworkSFTTrainer(args=SkyworkSFTConfig(max_length=512, **common), **kwargs)
    if kind == "connector":
        from skywork_rl.trainers.connector import ConnectorOnlyTrainer

        args = SkyworkSFTConfig(max_length=512, **common)
        return ConnectorOnlyTrainer(args=args, connector_names=resolve_connector(model), **kwargs)
    if kind == "mpo":
        from skywork_rl.trainers.mpo import MPOTrainer

        return MPOTrainer(args=DPOConfig(max_length=512, **common), **kwargs)
    from skywork_rl.trainers.ssb_grpo import SSBGRPOTrainer

    args = SkyworkGRPOConfig(
        per_device_train_batch_size=2, num_generations=2, max_completion_length=4, **common
    )
    return SSBGRPOTrainer(reward_funcs=constant_reward, args=args, **kwargs)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kind", TRAINERS)
def test_resume_loads_every_weight_of_the_checkpoint(kind, arch, tiny_model_dir, tmp_path):
    trainer = build_trainer(kind, tiny_model_dir[arch], tmp_path / "out")
    model = trainer.model
    params = dict(model.named_parameters())
    frozen = {n for n, p in params.items() if not p.requires_grad}
    with torch.no_grad():  # "trained" weights, saved the way Trainer writes a checkpoint's model
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoint = tmp_path / "out" / "checkpoint-1"
    trainer.save_model(str(checkpoint))
    assert (
        next(iter(load_file(str(checkpoint / "model.safetensors")))) not in trained
    )  # stored in the original layout
    with torch.no_grad():  # the resumed run starts from other weights
        for p in model.parameters():
            p.zero_()

    trainer._load_from_checkpoint(str(checkpoint))

    for name, value in model.state_dict().items():
        assert torch.equal(value, trained[name]), f"{kind}/{arch}: {name} not resumed"
    after = dict(model.named_parameters())
    assert all(after[n] is params[n] for n in params)  # the optimizer's parameters, loaded in place
    assert {n for n, p in after.items() if not p.requires_grad} == frozen  # frozen parts stay frozen


def test_best_model_at_end_loads_the_best_checkpoint_weights(tiny_internvl, tmp_path):
    trainer = build_trainer("sft", tiny_internvl, tmp_path / "out")
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.5)
    best = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.save_model(str(tmp_path / "out" / "checkpoint-2"))
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.zero_()
    trainer.state.best_model_checkpoint = str(tmp_path / "out" / "checkpoint-2")
    trainer._load_best_model()
    assert all(torch.equal(v, best[k]) for k, v in trainer.model.state_dict().items())


def test_resume_with_a_synced_reference_model_is_refused(tiny_internvl, tmp_path):
    trainer = build_trainer(
        "grpo", tiny_internvl, tmp_path, ssb_enabled=False, beta=0.04, sync_ref_model=True
    )
    with pytest.raises(ResumeError, match="sync_ref_model"):
        trainer._load_optimizer_and_scheduler(str(tmp_path / "checkpoint-1"))


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_resume_refuses_a_checkpoint_whose_weights_do_not_match(change, tiny_internvl, tmp_path):
    trainer = build_trainer("sft", tiny_internvl, tmp_path / "out")
    checkpoint = tmp_path / "checkpoint-1"
    trainer.save_model(str(checkpoint))
    weights = load_file(str(checkpoint / "model.safetensors"))
    name = "language_model.model.norm.weight"
    if change == "missing":
        del weights[name]
    else:
        weights["language_model.model.extra.weight"] = weights[name].clone()
        name = "language_model.model.extra.weight"
    save_file(weights, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ResumeError, match=rf"{change} .*{name.split('.model.')[-1]}"):
        trainer._load_from_checkpoint(str(checkpoint))


def test_grpo_checkpoint_writes_its_buffer_before_trainer_state(tiny_internvl, tmp_path, monkeypatch):
    """A kill between the buffer and trainer_state.json must not leave a "complete" checkpoint without a buffer."""
    present_at_state_write: dict[str, list[str]] = {}
    save_to_json = TrainerState.save_to_json

    def record(state, json_path):
        folder = Path(json_path).parent
        present_at_state_write[folder.name] = sorted(p.name for p in folder.iterdir())
        save_to_json(state, json_path)

    monkeypatch.setattr(TrainerState, "save_to_json", record)
    trainer = build_trainer("grpo", tiny_internvl, tmp_path, max_steps=1, save_strategy="steps", save_steps=1)
    trainer.train()

    required = trainer.checkpoint_files()
    assert {"ssb_buffer_rank0.pt", "grpo_generation_rank0.pt", "rng_state.pth"} <= set(required)
    assert set(required) - {"trainer_state.json"} <= set(present_at_state_write["checkpoint-1"])
    assert not [p for p in (tmp_path / "checkpoint-1").iterdir() if ".tmp" in p.name]  # written atomically
    assert last_complete_checkpoint(tmp_path, required) == str(tmp_path / "checkpoint-1")


def test_checkpoint_missing_a_buffer_file_is_skipped_or_refused(tmp_path):
    required = (
        "trainer_state.json",
        "rng_state_0.pth",
        "rng_state_1.pth",
        "ssb_buffer_rank0.pt",
        "ssb_buffer_rank1.pt",
    )
    for step, files in ((10, required), (20, [f for f in required if f != "ssb_buffer_rank1.pt"])):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("{}")
    assert last_complete_checkpoint(tmp_path, required) == str(tmp_path / "checkpoint-10")
    assert resolve_resume(tmp_path, "auto", required) == str(tmp_path / "checkpoint-10")
    with pytest.raises(FileNotFoundError, match=r"lacks \['ssb_buffer_rank1.pt'\]"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-20"), required)


def test_sync_ref_model_with_the_buffer_is_a_config_error(tmp_path):
    options = dict(output_dir=str(tmp_path), bf16=False, use_cpu=True, beta=0.04, sync_ref_model=True)
    with pytest.raises(ValueError, match="sync_ref_model.*ssb_enabled"):
        SkyworkGRPOConfig(**options)
    assert SkyworkGRPOConfig(ssb_enabled=False, **options).sync_ref_model  # plain GRPO may sync


def test_checkpoint_needs_no_buffer_file_when_the_buffer_is_off(tiny_internvl, tmp_path):
    trainer = build_trainer("grpo", tiny_internvl, tmp_path, ssb_enabled=False)
    assert trainer.checkpoint_files() == ["trainer_state.json", "rng_state.pth", "grpo_generation_rank0.pt"]
