"""Text-only rows with sharded parameters: every process runs the vision tower, so none of them hangs.

DeepSpeed ZeRO-3 and FSDP keep every parameter sharded and gather it, on all processes together,
for the forward (and the gradient reduce) of its module. A VLM skips its vision tower when a
micro-batch holds no image. With data that mixes rows with and without images (R1V3's cold-start
data keeps SciQ's text-only rows; R1V2's `clean` stage keeps them unless `clean.require_images:
true`), a process whose micro-batch happens to be text-only would skip the tower's gathers while
the others wait in them, and training would hang without an error.

Fix (issue 21): on a sharded run whose data mixes image and text-only rows, a text-only forward
gets one dummy image appended, so it takes the model's own image path, module for module as an
image batch does (`VisionInStep`). The dummy is what the family's processor makes of a small blank
image in a one-turn chat (so every pixel layout, InternVL tiles, Qwen grids, Idefics3 masks, is the
processor's own), appended after the last column of the first row; the other rows get padding
there. Its tokens are after every real token, so causal attention keeps them out of every real
position's output; its labels are -100, and the outputs are cut back to the batch's own length
after the forward, so TRL's losses, masks and metrics see exactly the batch they built. Backward
runs through the tower as well (its contribution to the loss is zero), so the gradient reduces
line up too. It is a forward hook pair on the model (and the reference model), installed by the
SFT, MPO and GRPO trainers; batches with images, and runs without sharding, are untouched.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from skywork_rl.errors import SkyworkError
from skywork_rl.families.capabilities import is_prefix_lm
from skywork_rl.trainers.init_arguments import bind_trainer_arguments

logger = logging.getLogger(__name__)

IMAGE_COLUMNS = ("images", "image")
# ours: processors resize it to their own input size; the smallest common size keeps the dummy cheap.
DUMMY_IMAGE_SIZE = 32
# Fields laid out per token of the sequence: the dummy's are appended to the batch's.
TOKEN_FIELDS = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0, "mm_token_type_ids": 0}
LABEL_FIELDS = ("labels", "shift_labels")


def text_only_rows(dataset: Any) -> list[int]:
    """Indices of the rows without an image (every row when the data has no image column).

    Read from the Arrow column (list lengths / nulls), so no image is decoded.
    """
    import pyarrow.compute as pc

    column = next((c for c in IMAGE_COLUMNS if c in dataset.column_names), None)
    if column is None:
        return list(range(len(dataset)))
    values = dataset.with_format("arrow")[column]
    if column == "images":
        lengths = pc.fill_null(pc.list_value_length(values), 0).to_pylist()
        return [i for i, n in enumerate(lengths) if n == 0]
    return [i for i, null in enumerate(pc.is_null(values).to_pylist()) if null]


def sharded_parameters(args: Any) -> str | None:
    """The name of the parameter sharding the run uses (ZeRO-3, FSDP), or None."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        return "DeepSpeed ZeRO-3"
    if getattr(args, "fsdp", None) or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true"):
        return "FSDP"
    return None


def bucketed_gradient_reduce(args: Any) -> str | None:
    """DeepSpeed ZeRO-1/2 (parameters whole, gradients reduced in buckets), or None.

    Found by the R1V3-8B rehearsal (ZeRO-2, SFT with the connector trainable): a process whose
    micro-batch is text-only produces no connector gradient, so its gradient buckets are smaller than
    the other processes' and the reduce fails ("Received data size doesn't match expected size"). The
    dummy image gives every process the same gradients, as under ZeRO-3.
    """
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() not in ("1", "true"):
        return None
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "")
    return None if stage == "3" else f"DeepSpeed ZeRO-{stage or '?'}"


def mixes_image_and_text_rows(datasets: dict[str, Any]) -> bool:
    """Whether some process may get a text-only micro-batch while another gets images.

    True when a dataset (recipe key -> data, or a dict of them) has both kinds of rows, or is a
    stream (it cannot be read ahead).
    """
    import datasets as hf_datasets

    for dataset in datasets.values():
        parts = dataset.values() if isinstance(dataset, dict) else [dataset]
        for part in parts:
            if not isinstance(part, hf_datasets.Dataset):
                return True
            rows = text_only_rows(part)
            if rows and len(rows) < len(part):
                return True
    return False


@dataclass
class DummyImage:
    """A one-image chat turn as the processor encodes it: per-token fields (1-D) and image fields."""

    tokens: dict[str, torch.Tensor]
    images: dict[str, torch.Tensor]
    pad_token_id: int

    @property
    def length(self) -> int:
        return int(self.tokens["input_ids"].numel())


def dummy_image(processor: Any) -> DummyImage:
    """What `processor` makes of a blank image in a one-turn chat (its chat template places the image)."""
    from PIL import Image

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " "}]}]
    text = processor.apply_chat_template(messages, tokenize=False)
    picture = Image.new("RGB", (DUMMY_IMAGE_SIZE, DUMMY_IMAGE_SIZE))
    encoded = processor(images=[[picture]], text=[text], return_tensors="pt", add_special_tokens=False)
    encoded = {k: v for k, v in encoded.items() if k not in LABEL_FIELDS}
    tokens = {k: torch.as_tensor(encoded.pop(k))[0] for k in TOKEN_FIELDS if k in encoded}
    tokenizer = getattr(processor, "tokenizer", processor)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return DummyImage(tokens, {k: torch.as_tensor(v) for k, v in encoded.items()}, int(pad))


class VisionInStep:
    """Forward hooks that give a text-only forward one dummy image, then cut its outputs back.

    `install` registers them on a model; see the module docstring for why the result is the batch's own.
    """

    def __init__(self, dummy: DummyImage, *, text_token_type: int = 0) -> None:
        self.dummy = dummy
        # The token type a batch without type ids stands for: text (0), or a prefix-LM's causal suffix (1).
        self.text_token_type = text_token_type
        # (batch, length before, dummy length) of each forward between its two hooks
        self._extended: list[tuple[int, int, int]] = []
        self.dummy_forwards = 0  # text-only forwards that ran the tower on the dummy image

    def install(self, model: torch.nn.Module) -> None:
        model.register_forward_pre_hook(self._extend, with_kwargs=True)
        model.register_forward_hook(self._cut, always_call=True)

    def _extend(
        self, module: Any, args: tuple, kwargs: dict[str, Any]
    ) -> tuple[tuple, dict[str, Any]] | None:
        input_ids = kwargs.get("input_ids")
        if (
            args  # positional inputs: not a trainer's forward (they pass keywords)
            or input_ids is None
            or kwargs.get("pixel_values") is not None
            # generation (a KV cache; transformers 5.25 names it `cache`): TRL gathers the parameters
            # whole for it (`unwrap_model_for_generation`), so no process waits on another's gathers
            or kwargs.get("cache") is not None
            or kwargs.get("past_key_values") is not None
            or kwargs.get("mm_encoder_outputs") is not None
        ):
            self._extended.append((0, 0, 0))
            return None
        batch, length = input_ids.shape
        n, device = self.dummy.length, input_ids.device
        kwargs = dict(kwargs)
        for key, fill in TOKEN_FIELDS.items():
            row = self.dummy.tokens.get(key)
            value = kwargs.get(key)
            if row is None or (value is None and key == "attention_mask"):
                continue
            if (
                value is None
            ):  # the family types its tokens (Gemma, Qwen2.5, PaliGemma); text gets text's type
                value = torch.full_like(input_ids, self.text_token_type)
                fill = self.text_token_type
            if fill is None:  # input ids: the other rows are padding (attention mask 0)
                fill = self.dummy.pad_token_id
            tail = torch.full((batch, n), fill, dtype=value.dtype, device=device)
            tail[0] = row.to(device)
            kwargs[key] = torch.cat([value, tail], dim=1)
        for key in LABEL_FIELDS:
            if kwargs.get(key) is not None:
                kwargs[key] = torch.cat([kwargs[key], kwargs[key].new_full((batch, n), -100)], dim=1)
        position_ids = kwargs.get("position_ids")
        if position_ids is not None:
            if position_ids.dim() != 2:
                raise SkyworkError(
                    f"text-only batch under sharded parameters: position_ids of shape {tuple(position_ids.shape)} "
                    "cannot take the dummy image that keeps the vision tower in step; drop the text-only rows "
                    "(clean.require_images: true) or train without padding_free"
                )
            tail = torch.arange(n, device=device, dtype=position_ids.dtype).expand(batch, n)
            kwargs["position_ids"] = torch.cat([position_ids, tail], dim=1)
        keep = kwargs.get("logits_to_keep")
        if isinstance(keep, int) and keep > 0:
            kwargs["logits_to_keep"] = keep + n
        for key, value in self.dummy.images.items():
            kwargs[key] = value.to(device)
        self._extended.append((batch, length, n))
        if not self.dummy_forwards:
            logger.info(
                "text-only batch under sharded parameters: the vision tower runs on a dummy image "
                "(%d tokens appended, outputs cut back) to keep this process's gathers in step",
                n,
            )
        self.dummy_forwards += 1
        return args, kwargs

    def _cut(self, module: Any, args: tuple, output: Any) -> Any:
        batch, length, n = self._extended.pop()
        if not n or not isinstance(output, dict):
            return output
        widths = {length + n: length, length + n - 1: length - 1}
        for key, value in list(output.items()):
            if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.size(0) == batch:
                width = widths.get(value.size(1))
                if width is not None and key != "image_hidden_states":
                    output[key] = value[:, :width]
                elif key == "logits" and value.size(1) > n:  # `logits_to_keep` columns plus the dummy's
                    output[key] = value[:, :-n]
        return output


def keep_vision_in_step(trainer: Any, datasets: dict[str, Any]) -> VisionInStep | None:
    """Install `VisionInStep` on the trainer's model and reference model when parameters are sharded
    (or gradients reduced in DeepSpeed's buckets, `bucketed_gradient_reduce`), the model takes images and
    the data mixes image and text-only rows; return it (None: not needed)."""
    processor = getattr(trainer, "processing_class", None)
    if (
        (sharded_parameters(trainer.args) or bucketed_gradient_reduce(trainer.args)) is None
        or getattr(processor, "image_processor", None) is None
        or not mixes_image_and_text_rows(datasets)
    ):
        return None

    dummy = dummy_image(processor)
    hooks = VisionInStep(dummy, text_token_type=int(is_prefix_lm(trainer.model)))
    hooks.install(trainer.model)
    ref_model = getattr(trainer, "ref_model", None)
    if isinstance(ref_model, torch.nn.Module):  # DPO's, GRPO's with beta > 0: sharded like the policy
        VisionInStep(dummy, text_token_type=hooks.text_token_type).install(ref_model)
    return hooks


class VisionBatchesInStepMixin:
    """For the SFT / MPO / GRPO trainers: `keep_vision_in_step` on the train and eval data.

    GRPO also: TRL 1.16's `_generate_and_score_completions` gathers the batch's images for its
    completion logs (``log_multimodal``) only on processes whose batch has images, so on mixed data a
    process with a text-only batch skips a collective the others make (garbled gathers, then a
    crash or a hang, under DDP too). Multimodal completion logs are turned off there, with a warning.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = bind_trainer_arguments(self, args, kwargs).arguments
        data = {"data.train": bound.get("train_dataset"), "data.eval": bound.get("eval_dataset")}
        data = {k: v for k, v in data.items() if v is not None}
        super().__init__(*args, **kwargs)
        self.vision_in_step = keep_vision_in_step(self, data)
        processes = self.accelerator.num_processes  # type: ignore[attr-defined]
        if getattr(self, "log_multimodal", False) and processes > 1 and mixes_image_and_text_rows(data):
            logger.warning(
                "training.log_multimodal turned off: the data mixes image and text-only rows, and TRL "
                "gathers images for its completion logs only on processes whose batch has images"
            )
            self.log_multimodal = False
