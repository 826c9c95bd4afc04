"""`SkyworkGRPOConfig`: TRL's `GRPOConfig` plus the Selective Sample Buffer options (R1V2).

Every TRL/transformers option still works under a recipe's `training:`; only the `ssb_*` fields
are ours. Defaults where R1V2 (arXiv 2504.16656, "Selective Sample Buffer") gives none are our
choices and each field's help says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from skywork_rl.trainers.resume import resume_from_checkpoint_field


@dataclass
class SkyworkGRPOConfig(GRPOConfig):
    """GRPO with R1V2's Selective Sample Buffer; `ssb_enabled: false` is plain TRL GRPO."""

    resume_from_checkpoint: str | None = resume_from_checkpoint_field()
    ssb_enabled: bool = field(
        default=True,
        metadata={
            "help": "Cache samples with non-zero advantage and replay them in place of zero-advantage samples "
            "of later updates (R1V2's Selective Sample Buffer). False gives TRL's GRPO unchanged."
        },
    )
    ssb_capacity: int = field(
        default=512,
        metadata={
            "help": "Most samples the buffer holds per process; beyond it the oldest are evicted (they are the "
            "most off-policy). Samples keep their image tensors (one copy per group, in the vision tower's "
            "dtype), so size this to host memory: ssb/buffer_bytes logs what it holds."
        },
    )
    ssb_priority_exponent: float = field(
        default=1.0,
        metadata={
            "help": "Replay probability ∝ |advantage| ** exponent. 1.0 is R1V2's weighting by absolute "
            "advantage; 0.0 samples uniformly; > 1 concentrates on the largest advantages."
        },
    )
    ssb_max_age: int | None = field(
        default=8,
        metadata={
            "help": "Samples produced more than this many optimizer steps ago are dropped before a draw, "
            "bounding how far the replayed behaviour policy lags the trained one (the PPO clip only "
            "bounds one update). null: never stale."
        },
    )
    ssb_max_fill_ratio: float = field(
        default=0.5,
        metadata={
            "help": "Largest fraction of each process's generation batch that replayed samples may fill; only "
            "zero-advantage slots are ever replaced. 0.5 keeps at least half of an update on fresh rollouts."
        },
    )
    ssb_advantage_threshold: float = field(
        default=1e-3,
        metadata={
            "help": "A sample with |advantage| at or below this is uninformative: never buffered, replaceable by a "
            "buffered sample, and not counted in ssb/effective_ratio. Above float noise of zero-std groups."
        },
    )

    reward_nan_max_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Ours. Largest share of a reward function's values that may be NaN or inf over a logging "
            "window (the batches since the last log); above it, or when one batch is NaN/inf throughout, the "
            "run fails naming the function. TRL's sum would give those completions 0 silently. Logged as "
            "rewards/<name>/nan_fraction. None (TRL's 'does not apply') is not counted."
        },
    )
    reward_nan_as_zero: bool = field(
        default=False,
        metadata={
            "help": "Score a NaN or inf reward as 0.0 and never fail on it (still counted in "
            "rewards/<name>/nan_fraction)."
        },
    )

    save_prompt_pool: bool = field(
        default=False,
        metadata={
            "help": "Write <output_dir>/prompt_pool at the end: the train rows whose groups carried non-zero "
            "advantage at least once, with the int column informative_groups (how often). R1V2's filtered "
            "prompt pool for a later RL stage (data.train: <this output_dir>/prompt_pool); kept in checkpoints."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ssb_capacity < 1:
            raise ValueError(f"training.ssb_capacity must be >= 1, got {self.ssb_capacity}")
        if self.ssb_priority_exponent < 0:
            raise ValueError(f"training.ssb_priority_exponent must be >= 0, got {self.ssb_priority_exponent}")
        if self.ssb_max_age is not None and self.ssb_max_age < 0:
            raise ValueError(f"training.ssb_max_age must be >= 0 or null, got {self.ssb_max_age}")
        if not 0.0 <= self.ssb_max_fill_ratio <= 1.0:
            raise ValueError(f"training.ssb_max_fill_ratio must be in [0, 1], got {self.ssb_max_fill_ratio}")
        if self.ssb_advantage_threshold < 0:
            raise ValueError(
                f"training.ssb_advantage_threshold must be >= 0, got {self.ssb_advantage_threshold}"
            )
        if not 0.0 <= self.reward_nan_max_fraction <= 1.0:
            raise ValueError(
                f"training.reward_nan_max_fraction must be in [0, 1], got {self.reward_nan_max_fraction}"
            )
        if self.ssb_enabled and self.sync_ref_model:
            # A replayed sample carries the reference log-probs of the step that generated it; a synced
            # reference moves every `ref_model_sync_steps`, so its KL term would compare against a stale one.
            raise ValueError(
                "training.sync_ref_model: true cannot be combined with training.ssb_enabled: true: samples the "
                "Selective Sample Buffer replays keep the reference log-probs of the step that generated them, "
                "and a synced reference model moves; set sync_ref_model: false (R1V2's setting) or ssb_enabled: false"
            )
