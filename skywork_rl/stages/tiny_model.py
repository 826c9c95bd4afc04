"""A pipeline stage that writes a tiny random-weight checkpoint (the offline demo's base model)."""

from __future__ import annotations

from dataclasses import dataclass, field

from skywork_rl.stages.base import Stage


@dataclass
class TinyModelOptions:
    arch: str = field(default="internvl", metadata={"help": "model_type; make-tiny-model --help lists them"})
    seed: int = field(default=0, metadata={"help": "weight initialisation seed"})
    output_dir: str = field(default="outputs/tiny-model", metadata={"help": "checkpoint folder to write"})


@dataclass
class TinyModelStageConfig:
    tiny: TinyModelOptions = field(default_factory=TinyModelOptions)


class TinyModelStage(Stage):
    """Write a tiny random-weight VLM checkpoint (see skywork_rl/tiny.py)."""

    name = "tiny-model"
    config_class = TinyModelStageConfig
    output_dir_key = "tiny.output_dir"
    input_model_key = None
    input_data_key = None
    distributed = False
    report_keys = ("parameters",)

    def run(self) -> dict[str, float]:
        from skywork_rl.tiny import make_tiny_model

        opts = self.config.tiny
        path = make_tiny_model(opts.arch, opts.output_dir, seed=opts.seed)
        from safetensors.torch import load_file

        n = sum(t.numel() for f in path.glob("*.safetensors") for t in load_file(str(f)).values())
        return {"parameters": float(n)}
