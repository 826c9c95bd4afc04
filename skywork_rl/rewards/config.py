"""The ``rewards:`` recipe group of the GRPO stage, and the builder that turns it into TRL rewards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from skywork_rl.rewards.accuracy import DEFAULT_BATCH_BUDGET_S, DEFAULT_TIMEOUT_S
from skywork_rl.rewards.judge import DEFAULT_JUDGE_BUDGET_S
from skywork_rl.rewards.judge_prompt import check_template

RewardFunc = Callable[..., list[float | None]]


@dataclass
class RewardArguments:
    """Which rewards score GRPO rollouts and how they combine (recipe group ``rewards:``)."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={
            "help": "Rewards by registry name (accuracy, verifier, format, format_soft, reward_model) or import "
            "path 'package.module:function' (a plain function in TRL's reward convention)."
        },
    )
    reward_weights: list[float] | None = field(
        default=None,
        metadata={
            "help": "One weight per entry of reward_funcs (default: all 1.0). Their only home: the GRPO "
            "stage passes them to TRL (GRPOConfig.reward_weights) and refuses training.reward_weights."
        },
    )
    mix: Literal["weighted", "hybrid"] = field(
        default="weighted",
        metadata={
            "help": "weighted: each reward is its own TRL reward function and TRL sums them with "
            "reward_weights (each logged as rewards/<name>/mean). hybrid: one function 'hybrid' "
            "mixes them itself with R1V2's reward-model calibration (rm_* options) and logs each "
            "component as rewards/hybrid/<name>/mean; TRL then gets no reward_weights."
        },
    )
    timeout_s: float = field(
        default=DEFAULT_TIMEOUT_S,
        metadata={
            "help": "Per-completion deadline of the accuracy check; past it the completion scores 0.0 "
            "and counts in rewards/accuracy/failures."
        },
    )
    batch_budget_s: float | None = field(
        default=DEFAULT_BATCH_BUDGET_S,
        metadata={
            "help": "Wall-clock budget of one accuracy-reward batch, so adversarial answers (power "
            "towers) stall a step by seconds, not minutes; completions still unscored when it runs "
            "out score 0.0 and count in rewards/accuracy/failures. At least timeout_s; null: no budget."
        },
    )
    num_workers: int | None = field(
        default=None,
        metadata={
            "help": "Processes scoring accuracy in parallel, per training process (default: usable "
            "cores // LOCAL_WORLD_SIZE, at least 1, so the processes on a node share its cores; "
            "0: in-process, no deadline, for debugging)."
        },
    )
    format_think_tags: list[str] = field(
        default_factory=lambda: ["<think>", "</think>"],
        metadata={"help": "Opening and closing reasoning tags the format reward expects."},
    )
    format_answer_tags: list[str] | None = field(
        default=None,
        metadata={
            "help": "Optional opening and closing tags the answer must sit in, e.g. [<answer>, </answer>]."
        },
    )
    format_require_boxed: bool = field(
        default=True,
        metadata={"help": "The format reward requires exactly one \\boxed{} answer after the reasoning."},
    )
    format_open_in_prompt: bool = field(
        default=False,
        metadata={
            "help": "The chat template emits the opening think tag in the generation prompt, so "
            "completions start inside the reasoning (R1V2/QwQ templates)."
        },
    )
    reward_model: str | None = field(
        default=None,
        metadata={
            "help": "Reward model name or path for the 'reward_model' reward: a sequence-classification "
            "checkpoint (text) or a VLM checkpoint with a reward head (sees the image)."
        },
    )
    reward_model_kind: Literal["auto", "text", "vlm"] = field(
        default="auto", metadata={"help": "auto: vlm when the checkpoint's config has a vision_config."}
    )
    reward_model_batch_size: int = field(default=8, metadata={"help": "Pairs per reward-model forward pass."})
    reward_model_max_length: int | None = field(
        default=None,
        metadata={
            "help": "Text RM: truncate inputs from the left to this many tokens (the score is read at "
            "the last token). Not applied to VLM RMs, whose image tokens must stay whole."
        },
    )
    reward_model_normalize: Literal["none", "sigmoid", "batch_zscore"] = field(
        default="none",
        metadata={
            "help": "none: raw RM logit; sigmoid: map to (0, 1), comparable with 0/1 rule rewards; "
            "batch_zscore: centre and scale over the batch of completions."
        },
    )
    reward_model_dtype: str = field(default="auto", metadata={"help": "torch dtype of the reward model."})
    reward_model_trust_remote_code: bool = field(default=False, metadata={"help": "Allow the RM's own code."})
    reward_model_allow_random_head: bool = field(
        default=False,
        metadata={
            "help": "VLM RM without a trained reward head: use a seeded random head (smoke tests only)."
        },
    )
    verifier_model: str | None = field(
        default=None,
        metadata={
            "help": "Judge model (path or hub id; any causal LM or VLM) of the 'verifier' reward: R1V3's "
            "accuracy, 1 when the rule checker OR this judge accepts the final answer."
        },
    )
    verifier_backend: Literal["transformers", "vllm"] = field(
        default="transformers",
        metadata={"help": "Generation backend of the judge (each training process runs its own)."},
    )
    verifier_backend_kwargs: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "Extra arguments of the judge's backend (transformers: batch_size; vLLM: e.g. "
            "gpu_memory_utilization, max_model_len)."
        },
    )
    verifier_trust_remote_code: bool = field(default=False, metadata={"help": "Allow the judge's own code."})
    verifier_prompt: str | None = field(
        default=None,
        metadata={
            "help": "The judge's question, with {answer}, {gold} and optionally {options} (default: "
            "skywork_rl.rewards.judge_prompt.DEFAULT_JUDGE_PROMPT); its reply must start with YES or NO."
        },
    )
    verifier_max_new_tokens: int = field(
        default=8, metadata={"help": "Tokens the judge may reply with (its verdict is its first word)."}
    )
    verifier_budget_s: float | None = field(
        default=DEFAULT_JUDGE_BUDGET_S,
        metadata={
            "help": "Wall-clock budget of the judge per reward call; answers it has not judged by then are "
            "left to the rules (counted in rewards/verifier/failures when the rules reject). null: none."
        },
    )
    verifier_cache_size: int = field(
        default=100_000, metadata={"help": "Judge verdicts kept in memory, per (answer, gold)."}
    )
    rm_clip: list[float] | None = field(
        default=None,
        metadata={
            "help": "hybrid: [min, max] bounds of the (normalised) RM score, so the RM alone cannot push "
            "a completion far (R1V2: excessive reward signals induced visual hallucination)."
        },
    )
    rm_threshold: float | None = field(
        default=None,
        metadata={
            "help": "hybrid: the RM score contributes only when it reaches this value (after clipping); "
            "below it, the contribution is 0."
        },
    )
    rm_gate: Literal["none", "correct", "unverifiable"] = field(
        default="none",
        metadata={
            "help": "hybrid: none: the RM adds to every completion; correct: only to completions the "
            "gate component marks correct (and rows with no gold answer); unverifiable: only to rows "
            "with no gold answer (rules decide the rest)."
        },
    )
    rm_gate_component: str = field(
        default="accuracy", metadata={"help": "hybrid: the rule reward whose value opens the rm_gate."}
    )
    correct_threshold: float = field(
        default=1.0, metadata={"help": "hybrid: a gate component value at or above this counts as correct."}
    )
    reward_kwargs: dict[str, dict[str, Any]] | None = field(
        default=None,
        metadata={
            "help": "Options of rewards in reward_funcs, by entry: keyword arguments bound to a "
            "'package.module:function' reward (or passed to a registered reward's builder), e.g. "
            "{'my_pkg.rewards:length_penalty': {max_len: 512}}; each must be a named parameter."
        },
    )

    def __post_init__(self) -> None:
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs):
            raise ValueError(
                f"rewards.reward_weights has {len(self.reward_weights)} entries for "
                f"{len(self.reward_funcs)} reward_funcs {self.reward_funcs}; give one weight per reward"
            )
        if len(self.format_think_tags) != 2 or (
            self.format_answer_tags and len(self.format_answer_tags) != 2
        ):
            raise ValueError("rewards.format_think_tags / format_answer_tags: give [opening, closing]")
        if self.rm_clip is not None and (len(self.rm_clip) != 2 or self.rm_clip[0] > self.rm_clip[1]):
            raise ValueError(f"rewards.rm_clip must be [min, max] with min <= max, got {self.rm_clip}")
        if self.batch_budget_s is not None and self.batch_budget_s < self.timeout_s:
            raise ValueError(
                f"rewards.batch_budget_s ({self.batch_budget_s:g}) is below rewards.timeout_s "
                f"({self.timeout_s:g}), so no completion could run to its own deadline; raise "
                "batch_budget_s, lower timeout_s, or set batch_budget_s: null for no budget"
            )
        if self.verifier_prompt is not None:
            check_template(self.verifier_prompt)
        if self.verifier_budget_s is not None and self.verifier_budget_s <= 0:
            raise ValueError(
                f"rewards.verifier_budget_s must be > 0 (or null for no budget), got {self.verifier_budget_s}"
            )
        calibrated = self.rm_clip is not None or self.rm_threshold is not None or self.rm_gate != "none"
        if calibrated and self.mix != "hybrid":
            raise ValueError("rewards.rm_clip / rm_threshold / rm_gate only apply with rewards.mix: hybrid")
        stray = sorted(set(self.reward_kwargs or {}) - set(self.reward_funcs))
        if stray:
            raise ValueError(
                f"rewards.reward_kwargs names {stray}, which rewards.reward_funcs {self.reward_funcs} does "
                "not list; key each reward's options by its reward_funcs entry"
            )
