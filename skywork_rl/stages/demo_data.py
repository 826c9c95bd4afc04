"""A pipeline stage that renders the offline synthetic dataset (skywork_rl/miniature/synthetic.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from skywork_rl.stages.base import Stage


@dataclass
class DemoDataOptions:
    num_examples: int = field(default=256, metadata={"help": "rows to render"})
    seed: int = field(default=0, metadata={"help": "generator seed (same seed, same rows)"})
    tasks: list[str] = field(
        default_factory=lambda: ["count_shapes", "digit_arithmetic", "tallest_bar"],
        metadata={"help": "task kinds to cycle through"},
    )
    image_size: int = field(default=112, metadata={"help": "rendered image side in pixels"})
    split: str | None = field(
        default=None,
        metadata={
            "help": "train, rl or heldout: only that split's problems (splits never share one); unset: any"
        },
    )
    output_dir: str = field(default="outputs/demo-data", metadata={"help": "save_to_disk folder"})


@dataclass
class DemoDataStageConfig:
    demo: DemoDataOptions = field(default_factory=DemoDataOptions)


class DemoDataStage(Stage):
    """Render synthetic visual reasoning problems with known answers (canonical schema, SFT traces)."""

    name = "demo-data"
    config_class = DemoDataStageConfig
    produces = "data"
    output_dir_key = "demo.output_dir"
    input_model_key = None
    input_data_key = None
    distributed = False
    report_keys = ("rows",)

    def run(self) -> dict[str, float]:
        from collections import Counter

        from skywork_rl.miniature.synthetic import build_dataset  # defers PIL

        opts = self.config.demo
        ds = build_dataset(opts.num_examples, opts.seed, tuple(opts.tasks), opts.image_size, opts.split)
        ds.save_to_disk(opts.output_dir)
        metrics: dict[str, float] = {"rows": float(len(ds))}
        for source, n in Counter(ds["source"]).items():
            metrics[f"rows/{source}"] = float(n)
        return metrics
