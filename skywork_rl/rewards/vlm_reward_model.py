"""The VLM reward model: a VLM's base model plus a scalar head, as Skywork-VL Reward builds it.

transformers has sequence-classification heads for few VLMs (Gemma3 only, in 5.x), so
`VLMRewardModel` is the generic design of Skywork-VL Reward (arXiv 2505.07263: a VLM backbone whose
LM head is replaced by a fully-connected reward head on the final hidden state): the backbone's
base model (no LM head: no full-vocabulary logits, no per-layer hidden states) + ``Linear(hidden,
1)`` read at each sequence's last token. The head is loaded from ``reward_head.safetensors`` or
from a ``score`` / ``value_head`` / ``v_head.summary`` tensor in the checkpoint's weights
(Skywork-VL-Reward-7B keeps TRL's ``v_head.summary``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

HEAD_FILE = "reward_head.safetensors"
_HEAD_KEYS = ("reward_head.weight", "score.weight", "value_head.weight", "v_head.summary.weight")

logger = logging.getLogger(__name__)


def _head_shards(path: Path) -> list[Path]:
    """The weight files that can hold the head: the index's entry when there is one, else all."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text()).get("weight_map", {})
        files = {f for key, f in weight_map.items() if key.endswith(_HEAD_KEYS)}
        return [path / f for f in sorted(files)]
    return sorted(path.glob("*.safetensors"))


def find_head(path: Path) -> dict[str, torch.Tensor] | None:
    """The reward head's ``weight`` (and ``bias``) in a checkpoint folder, or None."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if (path / HEAD_FILE).is_file():
        return load_file(str(path / HEAD_FILE))
    for shard in _head_shards(path):
        with safe_open(str(shard), framework="pt") as handle:
            keys = list(handle.keys())
            for key in keys:
                if key.endswith(_HEAD_KEYS):
                    tensors = {"weight": handle.get_tensor(key)}
                    bias = key[: -len("weight")] + "bias"
                    if bias in keys:
                        tensors["bias"] = handle.get_tensor(bias)
                    return tensors
    return None


class VLMRewardModel(nn.Module):
    """VLM base model + scalar reward head on the last token's final hidden state."""

    def __init__(self, backbone: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        if getattr(backbone, "base_model", backbone) is backbone:
            raise TypeError(
                f"{type(backbone).__name__} has no separate base model (base_model_prefix "
                f"{getattr(backbone, 'base_model_prefix', None)!r}), so it cannot be run without its LM head"
            )
        self.backbone, self.head = backbone, head

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, allow_random_head: bool = False, seed: int = 0, **load_kwargs: Any
    ) -> VLMRewardModel:
        """Backbone and head from a checkpoint folder (resolve hub ids with `resolve_checkpoint` first)."""
        from transformers import AutoModelForImageTextToText

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"reward model {path}: not a folder (resolve hub ids first)")
        backbone = AutoModelForImageTextToText.from_pretrained(str(path), **load_kwargs)
        hidden = backbone.config.get_text_config().hidden_size
        tensors = find_head(path)
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
        """Scores ``(batch,)`` for right-padded inputs: the base model's last hidden state, one position
        per row, through the head. The LM head never runs (at 8 x 17K tokens and a 152K vocabulary its
        logits alone would be ~80 GB)."""
        outputs = self.backbone.base_model(attention_mask=attention_mask, use_cache=False, **inputs)
        hidden = outputs.last_hidden_state
        last = attention_mask.sum(dim=1) - 1
        return self.head(hidden[torch.arange(hidden.shape[0], device=hidden.device), last]).squeeze(-1)


def is_vlm_checkpoint(path: str | Path, trust_remote_code: bool) -> bool:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    return getattr(config, "vision_config", None) is not None
