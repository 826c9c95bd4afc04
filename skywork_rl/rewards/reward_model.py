"""Reward-model reward: a scalar score for (prompt, completion) from a learned reward model.

Two kinds, picked from the checkpoint's config (``kind="auto"``): a text RM (any
``AutoModelForSequenceClassification`` checkpoint with one label) or a VLM RM that also sees the
image (`skywork_rl.rewards.vlm_reward_model.VLMRewardModel`, Skywork-VL Reward's design).

Loading follows `skywork_rl.rewards.loading`: a hub id resolves to its cached folder (a VLM RM's
head is found there too), the model loads outside ZeRO-3's ``zero.Init`` and is placed as TRL
places its reward models. Inputs longer than ``max_length`` lose tokens from the left (the start of
the prompt) and are counted (`skywork_rl.rewards.rm_inputs`).

Errors are loud where they are about the setup and counted where they are about one item:
- raised (`SkyworkError`): the model cannot load; the device runs out of memory; every item of a
  call failed (a shape error on every row is a broken model or processor, not bad luck); and, when
  the RM is partitioned over ZeRO-3 ranks, any failure at all, since the ranks run each forward
  together and one of them cannot skip or retry a batch alone;
- counted: an item whose input cannot be built, whose forward fails on its own (a failed batch is
  retried one item at a time), whose score is not finite, or that cannot fit ``max_length`` without
  cutting image tokens. It scores None (TRL: "does not apply"; a raw RM logit of 0.0 would be a
  real score) and counts in ``rewards/<name>/failures``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from skywork_rl.errors import SkyworkError
from skywork_rl.rewards.loading import outside_zero3_init, place_for_inference, resolve_checkpoint
from skywork_rl.rewards.rm_inputs import (
    multimodal_token_ids,
    plan_truncation,
    render_conversation,
    truncate_left,
)
from skywork_rl.rewards.vlm_reward_model import HEAD_FILE, VLMRewardModel, is_vlm_checkpoint

if TYPE_CHECKING:
    from skywork_rl.rewards.config import RewardArguments

logger = logging.getLogger(__name__)

Normalize = Literal["none", "sigmoid", "batch_zscore"]

__all__ = ["HEAD_FILE", "RMScores", "RewardModelReward", "VLMRewardModel", "normalize_scores"]


def normalize_scores(scores: list[float | None], how: Normalize) -> list[float | None]:
    """``sigmoid`` maps a Bradley-Terry logit to (0, 1); ``batch_zscore`` centres the scored items."""
    if how == "none" or not scores:
        return scores
    present = [i for i, s in enumerate(scores) if s is not None]
    if not present:
        return scores
    values = torch.tensor([scores[i] for i in present], dtype=torch.float64)
    if how == "sigmoid":
        values = torch.sigmoid(values)
    elif how == "batch_zscore":
        std = values.std(unbiased=False)
        values = (values - values.mean()) / (std if std > 0 else 1.0)
    else:
        raise ValueError(f"reward model: normalize must be none, sigmoid or batch_zscore, got {how!r}")
    out = list(scores)
    for i, value in zip(present, values.tolist(), strict=True):
        out[i] = value
    return out


@dataclass
class RMScores:
    """Raw scores (None where an item failed), the failures by item, and how many inputs were cut."""

    scores: list[float | None]
    errors: dict[int, str] = field(default_factory=dict)
    truncated: int = 0


class RewardModelReward:
    """TRL reward function scoring (prompt, completion) pairs with a reward model, batched.

    The model loads on first call (on ``device``, default: the accelerate process's device), so
    building the reward list in a recipe costs nothing until training starts. See the module
    docstring for what raises and what is counted.
    """

    def __init__(
        self,
        name_or_path: str,
        *,
        name: str = "reward_model",
        kind: Literal["auto", "text", "vlm"] = "auto",
        device: str | torch.device | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        normalize: Normalize = "none",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        allow_random_head: bool = False,
        key: str = "rewards.reward_model",
    ) -> None:
        self.__name__ = name
        self.name_or_path, self.kind, self.device, self.key = name_or_path, kind, device, key
        self.batch_size, self.max_length, self.normalize = batch_size, max_length, normalize
        self.dtype, self.trust_remote_code = dtype, trust_remote_code
        self.allow_random_head = allow_random_head
        self.sharded = False  # partitioned over ZeRO-3 ranks (set by `load`)
        self._model: Any = None
        self._processor: Any = None
        self._protected: set[int] = set()

    def load(self) -> None:
        """Load and place the model now (a no-op when loaded); raise a clear error if it fails."""
        if self._model is not None:
            return
        try:
            self._load()
        except SkyworkError:
            self._model = self._processor = None
            raise
        except Exception as error:
            self._model = self._processor = None
            raise SkyworkError(
                f"reward model '{self.name_or_path}' ({self.key}) could not be loaded: "
                f"{type(error).__name__}: {error}. Check the name or path, that the checkpoint has a "
                "reward head (rewards.reward_model_allow_random_head for smoke tests only), and "
                "rewards.reward_model_dtype"
            ) from error

    def _load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoProcessor, AutoTokenizer

        path = resolve_checkpoint(self.name_or_path, key=self.key)
        if self.device is None:
            from accelerate import PartialState

            self.device = PartialState().device
        if self.kind == "auto":
            self.kind = "vlm" if is_vlm_checkpoint(path, self.trust_remote_code) else "text"
        common = {"trust_remote_code": self.trust_remote_code, "dtype": self.dtype}
        with outside_zero3_init():
            if self.kind == "vlm":
                model = VLMRewardModel.from_pretrained(
                    path, allow_random_head=self.allow_random_head, **common
                )
                processor = AutoProcessor.from_pretrained(str(path), trust_remote_code=self.trust_remote_code)
                tokenizer, config = processor.tokenizer, model.backbone.config
            else:
                model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, **common)
                processor = tokenizer = AutoTokenizer.from_pretrained(
                    str(path), trust_remote_code=self.trust_remote_code
                )
                config = model.config
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"  # the score is read at each row's last real token
        if self.kind == "text":
            model.config.pad_token_id = tokenizer.pad_token_id
        if self.max_length is None:
            self.max_length = getattr(config.get_text_config(), "max_position_embeddings", None)
        self._protected = multimodal_token_ids(config, processor) if self.kind == "vlm" else set()
        # A VLM's forwards differ between ranks (text-only rows skip the vision tower), so it is not
        # partitioned over ZeRO-3 ranks; a text RM runs the same forwards everywhere, as TRL's do.
        self._model, self.sharded = place_for_inference(
            model.eval(), self.device, shardable=self.kind == "text"
        )
        self._processor, self._pad_id = processor, tokenizer.pad_token_id

    def _encode(self, texts: list[str], images: list[Any] | None) -> dict[str, Any]:
        if self.kind == "vlm":
            if images is not None and all(not imgs for imgs in images):
                images = None
            inputs = self._processor(text=texts, images=images, padding=True, return_tensors="pt")
            return {k: v for k, v in inputs.items() if k != "token_type_ids"}
        return dict(self._processor(texts, padding=True, return_tensors="pt", add_special_tokens=False))

    def _forward(self, batch: dict[str, Any]) -> list[float]:
        dtype = next(self._model.parameters()).dtype
        inputs = {
            k: v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in batch.items()
        }
        # Scoring only: without inference mode autograd would keep every layer's activations for a
        # backward that never comes (out of memory at the first call on a real RM). TRL scores its
        # own reward models the same way (`GRPOTrainer._calculate_rewards`), also under ZeRO-3.
        with torch.inference_mode():
            values = self._model(**inputs)
            values = values if self.kind == "vlm" else values.logits[:, 0]
            return values.float().cpu().tolist()

    def _score_together(
        self, chunk: list[int], texts: list[str], images: list[Any] | None, out: RMScores
    ) -> None:
        """Score ``chunk`` in one forward; rows that cannot fit ``max_length`` are failed and left out."""
        pick = lambda rows: ([texts[i] for i in rows], [images[i] for i in rows] if images else None)  # noqa: E731
        batch = self._encode(*pick(chunk))
        plan = plan_truncation(batch, self.max_length, self._protected) if self.max_length else None
        if plan is not None and plan.too_long:
            for row in plan.too_long:
                out.errors[chunk[row]] = (
                    f"longer than max_length {self.max_length} (rewards.reward_model_max_length) even "
                    "without the prompt text before its first image"
                )
            chunk = [i for row, i in enumerate(chunk) if row not in set(plan.too_long)]
            if not chunk:
                return
            batch = self._encode(*pick(chunk))
            plan = plan_truncation(batch, self.max_length, self._protected)
        if plan is not None:
            batch = truncate_left(batch, self.max_length, self._pad_id)
        values = self._forward(batch)
        for index, value in zip(chunk, values, strict=True):
            if math.isfinite(value):
                out.scores[index] = value
            else:
                out.errors[index] = f"non-finite score {value}"
        out.truncated += len(plan.truncated) if plan is not None else 0

    def score_detailed(
        self, prompts: Sequence[Any], completions: Sequence[Any], images: Sequence[Any] | None = None
    ) -> RMScores:
        """Raw scores (before normalisation) with the per-item failures; raises on systemic errors."""
        self.load()
        n = len(completions)
        out = RMScores(scores=[None] * n)
        texts: list[str] = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            try:
                texts.append(render_conversation(self._processor, self.kind, prompt, completion))
            except Exception as error:  # noqa: BLE001 - one bad conversation is that item's failure
                if self.sharded:
                    raise self._systemic(f"item {i}: {type(error).__name__}: {error}") from error
                texts.append("")
                out.errors[i] = f"chat template: {type(error).__name__}: {error}"
        image_lists = list(images) if images is not None else None
        for start in range(0, n, self.batch_size):
            chunk = [i for i in range(start, min(start + self.batch_size, n)) if i not in out.errors]
            if chunk:
                self._score_chunk(chunk, texts, image_lists, out)
        if n and len(out.errors) == n:
            first = next(iter(out.errors.values()))
            raise self._systemic(f"all {n} items failed (first: {first})")
        for index, error in out.errors.items():
            logger.warning("reward model %s: item %d not scored: %s", self.name_or_path, index, error)
        return out

    def _score_chunk(
        self, chunk: list[int], texts: list[str], images: list[Any] | None, out: RMScores
    ) -> None:
        try:
            self._score_together(chunk, texts, images, out)
            return
        except torch.OutOfMemoryError as error:
            raise self._systemic(
                f"out of memory on {len(chunk)} items; lower rewards.reward_model_batch_size or "
                "rewards.reward_model_max_length"
            ) from error
        except Exception as error:  # noqa: BLE001 - narrowed below: per item, or raised
            if self.sharded:
                raise self._systemic(f"{type(error).__name__}: {error}") from error
            if len(chunk) == 1:
                out.errors[chunk[0]] = f"{type(error).__name__}: {error}"
                return
        for index in chunk:  # find the item(s) that broke the batch; the rest still get scores
            self._score_chunk([index], texts, images, out)

    def _systemic(self, what: str) -> SkyworkError:
        where = " (partitioned over ZeRO-3 ranks: no rank can skip a batch alone)" if self.sharded else ""
        return SkyworkError(f"reward model '{self.name_or_path}' ({self.key}){where}: {what}")

    def score(
        self, prompts: Sequence[Any], completions: Sequence[Any], images: Sequence[Any] | None = None
    ) -> list[float | None]:
        """Raw scores (before normalisation), None where an item failed; raises on systemic errors."""
        return self.score_detailed(prompts, completions, images).scores

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        images: Sequence[Any] | None = None,
        image: Sequence[Any] | None = None,
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if images is None and image is not None:  # single-image datasets name the column "image"
            images = [[img] if img is not None else [] for img in image]
        if not completions:
            return []
        result = self.score_detailed(prompts, completions, images)
        scored = [s for s in result.scores if s is not None]
        if log_metric is not None:
            log_metric(f"rewards/{self.__name__}/failures", float(len(result.errors)))
            log_metric(f"rewards/{self.__name__}/truncated", float(result.truncated))
            log_metric(f"rewards/{self.__name__}/raw_mean", sum(scored) / len(scored))
        return normalize_scores(result.scores, self.normalize)


def build_reward_model(args: RewardArguments, device: Any = None) -> RewardModelReward:
    """The ``reward_model`` reward of a recipe's ``rewards.reward_model*`` options."""
    if not args.reward_model:
        raise ValueError(
            "rewards.reward_funcs names 'reward_model' but rewards.reward_model is not set; give the "
            "reward model's name or path"
        )
    return RewardModelReward(
        args.reward_model,
        kind=args.reward_model_kind,
        device=device,
        batch_size=args.reward_model_batch_size,
        max_length=args.reward_model_max_length,
        normalize=args.reward_model_normalize,
        dtype=args.reward_model_dtype,
        trust_remote_code=args.reward_model_trust_remote_code,
        allow_random_head=args.reward_model_allow_random_head,
    )
