"""A pipeline stage that writes a tiny random-weight checkpoint (the offline demo's base model).

With ``tiny.reward_head: true`` the checkpoint also gets a scalar reward head
(``reward_head.safetensors``), which makes it a VLM reward model of Skywork-VL Reward's design
(`skywork_rl.rewards.vlm_reward_model`): what the tiny pipeline's preference-pairs stage scores its
candidates with. A random head scores noise; it exercises the scoring and the margin threshold, not
the judgement of a trained reward model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from skywork_rl.stages.base import Stage


@dataclass
class TinyModelOptions:
    arch: str = field(default="internvl", metadata={"help": "model_type; make-tiny-model --help lists them"})
    seed: int = field(default=0, metadata={"help": "weight initialisation seed"})
    output_dir: str = field(default="outputs/tiny-model", metadata={"help": "checkpoint folder to write"})
    reward_head: bool = field(
        default=False,
        metadata={
            "help": "Also write a random scalar reward head (reward_head.safetensors): the folder then "
            "loads as a VLM reward model (reward_model.name_or_path / rewards.reward_model)."
        },
    )


@dataclass
class TinyModelStageConfig:
    tiny: TinyModelOptions = field(default_factory=TinyModelOptions)


def write_reward_head(path: Path, seed: int) -> None:
    """A ``Linear(hidden, 1)`` head with N(0, 1/hidden) weights, as `VLMRewardModel` initialises a
    missing one, saved where `VLMRewardModel.from_pretrained` finds it."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    from skywork_rl.rewards.vlm_reward_model import HEAD_FILE  # defers torch

    hidden = AutoConfig.from_pretrained(str(path)).get_text_config().hidden_size
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(1, hidden, generator=generator) * hidden**-0.5
    save_file({"weight": weight.contiguous()}, str(path / HEAD_FILE))


class TinyModelStage(Stage):
    """Write a tiny random-weight VLM checkpoint (see skywork_rl/miniature/tiny.py), optionally with a reward head."""

    name = "tiny-model"
    config_class = TinyModelStageConfig
    output_dir_key = "tiny.output_dir"
    input_model_key = None
    input_data_key = None
    distributed = False
    report_keys = ("parameters",)

    def run(self) -> dict[str, float]:
        from skywork_rl.miniature.tiny import make_tiny_model  # defers torch, transformers

        opts = self.config.tiny
        path = make_tiny_model(opts.arch, opts.output_dir, seed=opts.seed)
        if opts.reward_head:
            write_reward_head(path, opts.seed)
        else:  # a head left by an earlier run with reward_head: true would make this a reward model
            from skywork_rl.rewards.vlm_reward_model import HEAD_FILE  # defers torch

            (path / HEAD_FILE).unlink(missing_ok=True)
        from safetensors.torch import load_file

        n = sum(t.numel() for f in path.glob("*.safetensors") for t in load_file(str(f)).values())
        return {"parameters": float(n)}
