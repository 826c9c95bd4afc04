"""Reward-model reward: a scalar score for (prompt, completion) from a learned reward model.

Two kinds, picked from the checkpoint's config (``kind="auto"``):
- text RM: any ``AutoModelForSequenceClassification`` checkpoint with one label;
- VLM RM: a VLM that also sees the image. transformers has sequence-classification heads for few
  VLMs (Gemma3 only, in 5.x), so `VLMRewardModel` is the generic design of Skywork-VL Reward
  (arXiv 2505.07263: a VLM backbone whose LM head is replaced by a fully-connected reward head on
  the final hidden state): ``AutoModelForImageTextToText`` backbone + ``Linear(hidden, 1)`` read
  at each sequence's last token. The head is loaded from ``reward_head.safetensors`` or from a
  ``score`` / ``value_head`` / ``v_head.summary`` tensor in the checkpoint's weights.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from skywork_rl.rewards.completions import completion_text

logger = logging.getLogger(__name__)

HEAD_FILE = "reward_head.safetensors"
_HEAD_KEYS = ("reward_head.weight", "score.weight", "value_head.weight", "v_head.summary.weight")
Normalize = Literal["none", "sigmoid", "batch_zscore"]


def _find_head(path: Path) -> dict[str, torch.Tensor] | None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    if (path / HEAD_FILE).is_file():
        return load_file(str(path / HEAD_FILE))
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                if key.endswith(_HEAD_KEYS):
                    tensors = {"weight": handle.get_tensor(key)}
                    bias = key[: -len("weight")] + "bias"
                    if bias in handle.keys():  # noqa: SIM118
                        tensors["bias"] = handle.get_tensor(bias)
                    return tensors
    return None


class VLMRewardModel(nn.Module):
    """VLM backbone + scalar reward head on the last token's final hidden state."""

    def __init__(self, backbone: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, allow_random_head: bool = False, seed: int = 0, **load_kwargs: Any
    ) -> VLMRewardModel:
        from transformers import AutoModelForImageTextToText

        path = Path(path)
        backbone = AutoModelForImageTextToText.from_pretrained(str(path), **load_kwargs)
        hidden = backbone.config.get_text_config().hidden_size
        tensors = _find_head(path) if path.is_dir() else None
        head = nn.Linear(hidden, 1, bias=tensors is not None and "bias" in tensors)
        if tensors is not None:
            head.load_state_dict({k: v.reshape(getattr(head, k).shape) for k, v in tensors.items()})
        elif allow_random_head:
            logger.warning("reward model %s has no reward head; using a random one (seed %d)", path, seed)
            generator = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                head.weight.normal_(0.0, hidden**-0.5, generator=generator)
        else:
            raise FileNotFoundError(
                f"reward model {path}: no reward head found ({HEAD_FILE} or a tensor named "
                f"{', '.join(_HEAD_KEYS)}); train one, or set rewards.reward_model_allow_random_head "
                "for smoke tests"
            )
        head.to(dtype=next(backbone.parameters()).dtype)
        return cls(backbone, head)

    def save_pretrained(self, out_dir: str | Path) -> None:
        from safetensors.torch import save_file

        self.backbone.save_pretrained(str(out_dir))
        save_file(
            {k: v.contiguous() for k, v in self.head.state_dict().items()}, str(Path(out_dir) / HEAD_FILE)
        )

    def forward(self, attention_mask: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """Scores ``(batch,)`` for right-padded inputs."""
        outputs = self.backbone(attention_mask=attention_mask, output_hidden_states=True, **inputs)
        hidden = outputs.hidden_states[-1]
        last = attention_mask.sum(dim=1) - 1
        return self.head(hidden[torch.arange(hidden.shape[0], device=hidden.device), last]).squeeze(-1)


def _is_vlm_checkpoint(name_or_path: str, trust_remote_code: bool) -> bool:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    return getattr(config, "vision_config", None) is not None


def _as_parts(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with string content turned into text parts (VLM chat templates expect parts)."""
    return [
        {**m, "content": [{"type": "text", "text": m["content"]}]} if isinstance(m.get("content"), str) else m
        for m in messages
    ]


def _prompt_messages(prompt: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _text_only(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages with image parts dropped, for a text RM."""
    flat = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            content = "\n".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
        flat.append({"role": message["role"], "content": content})
    return flat


def normalize_scores(scores: list[float], how: Normalize) -> list[float]:
    """``sigmoid`` maps a Bradley-Terry logit to (0, 1); ``batch_zscore`` centres the batch."""
    if how == "none" or not scores:
        return scores
    values = torch.tensor(scores, dtype=torch.float64)
    if how == "sigmoid":
        return torch.sigmoid(values).tolist()
    if how == "batch_zscore":
        std = values.std(unbiased=False)
        return ((values - values.mean()) / (std if std > 0 else 1.0)).tolist()
    raise ValueError(f"reward model: normalize must be none, sigmoid or batch_zscore, got {how!r}")


class RewardModelReward:
    """TRL reward function scoring (prompt, completion) pairs with a reward model, batched.

    The model loads on first call (on ``device``, default: the accelerate process's device), so
    building the reward list in a recipe costs nothing until training starts. A model that cannot
    be loaded (wrong path, no reward head, bad dtype) is a configuration error and raises; only a
    batch whose forward pass fails scores 0.0 (counted in ``rewards/<name>/failures``).
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
    ) -> None:
        self.__name__ = name
        self.name_or_path, self.kind, self.device = name_or_path, kind, device
        self.batch_size, self.max_length, self.normalize = batch_size, max_length, normalize
        self.dtype, self.trust_remote_code, self.allow_random_head = (
            dtype,
            trust_remote_code,
            allow_random_head,
        )
        self._model: nn.Module | None = None
        self._processor: Any = None

    def load(self) -> None:
        """Load the model and processor now (a no-op when loaded); raise a clear error if it fails."""
        if self._model is not None:
            return
        try:
            self._load()
        except Exception as error:
            self._model = self._processor = None
            raise RuntimeError(
                f"reward model '{self.name_or_path}' (rewards.reward_model) could not be loaded: "
                f"{type(error).__name__}: {error}. Check the name or path, that the checkpoint has a "
                "reward head (rewards.reward_model_allow_random_head for smoke tests only), and "
                "rewards.reward_model_dtype"
            ) from error

    def _load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoProcessor, AutoTokenizer

        if self.device is None:
            from accelerate import PartialState

            self.device = PartialState().device
        if self.kind == "auto":
            self.kind = "vlm" if _is_vlm_checkpoint(self.name_or_path, self.trust_remote_code) else "text"
        common = {"trust_remote_code": self.trust_remote_code, "dtype": self.dtype}
        if self.kind == "vlm":
            self._model = VLMRewardModel.from_pretrained(
                self.name_or_path, allow_random_head=self.allow_random_head, **common
            )
            self._processor = AutoProcessor.from_pretrained(
                self.name_or_path, trust_remote_code=self.trust_remote_code
            )
            tokenizer = self._processor.tokenizer
        else:
            self._model = AutoModelForSequenceClassification.from_pretrained(
                self.name_or_path, num_labels=1, **common
            )
            self._processor = tokenizer = AutoTokenizer.from_pretrained(
                self.name_or_path, trust_remote_code=self.trust_remote_code
            )
            tokenizer.truncation_side = "left"  # the score is read at the last token: keep it
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        if self.kind == "text":
            self._model.config.pad_token_id = tokenizer.pad_token_id
        self._model.to(self.device).eval()

    def _texts(self, prompts: Sequence[Any], completions: Sequence[Any]) -> list[str]:
        texts = []
        for prompt, completion in zip(prompts, completions, strict=True):
            answer = completion_text(completion)
            if self.kind == "vlm":
                messages = _as_parts(_prompt_messages(prompt) + [{"role": "assistant", "content": answer}])
                texts.append(self._processor.apply_chat_template(messages, tokenize=False))
            elif getattr(self._processor, "chat_template", None):
                messages = _text_only(_prompt_messages(prompt)) + [{"role": "assistant", "content": answer}]
                texts.append(self._processor.apply_chat_template(messages, tokenize=False))
            else:
                prompt_text = prompt if isinstance(prompt, str) else _text_only(prompt)[-1]["content"]
                texts.append(prompt_text + answer)
        return texts

    @torch.inference_mode()
    def score(
        self, prompts: Sequence[Any], completions: Sequence[Any], images: Sequence[Any] | None = None
    ) -> list[float]:
        """Raw scores (before normalisation), one per pair; raises on model errors."""
        self.load()
        texts = self._texts(prompts, completions)
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            if self.kind == "vlm":
                chunk_images = list(images[start : start + self.batch_size]) if images is not None else None
                if chunk_images is not None and all(not imgs for imgs in chunk_images):
                    chunk_images = None
                inputs = self._processor(text=chunk, images=chunk_images, padding=True, return_tensors="pt")
                inputs = {k: v.to(self.device) for k, v in inputs.items() if k != "token_type_ids"}
                values = self._model(**inputs)
            else:
                truncate = {"truncation": True, "max_length": self.max_length} if self.max_length else {}
                inputs = self._processor(
                    chunk, padding=True, return_tensors="pt", add_special_tokens=False, **truncate
                )
                values = self._model(**inputs.to(self.device)).logits[:, 0]
            scores.extend(values.float().cpu().tolist())
        return scores

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        images: Sequence[Any] | None = None,
        image: Sequence[Any] | None = None,
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float]:
        if images is None and image is not None:  # single-image datasets name the column "image"
            images = [[img] if img is not None else [] for img in image]
        # Outside the try below: a model that cannot load fails every step the same way, so it is
        # a configuration error to raise, not a batch to score 0.0 (and to retry loading next step).
        self.load()
        try:
            scores = self.score(prompts, completions, images)
        except Exception as error:  # noqa: BLE001 - a failed RM batch must not kill the step
            logger.error("reward model %s failed on a batch (%s); scoring it 0.0", self.name_or_path, error)
            if log_metric is not None:
                log_metric(f"rewards/{self.__name__}/failures", float(len(completions)))
            return [0.0] * len(completions)
        if log_metric is not None:
            log_metric(f"rewards/{self.__name__}/failures", 0.0)
            log_metric(f"rewards/{self.__name__}/raw_mean", sum(scores) / max(1, len(scores)))
        return normalize_scores(scores, self.normalize)
