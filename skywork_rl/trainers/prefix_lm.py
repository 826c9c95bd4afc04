"""Prefix-LM models (PaliGemma) in TRL's trainers: the completion is the causal suffix, never the prefix.

PaliGemma attends bidirectionally over its prefix (the images, `<bos>`, the prompt and the newline
its processor appends) and causally over the suffix, and tells them apart by `token_type_ids`
(0 = prefix, 1 = suffix). TRL builds prompt + completion sequences for every model the same way,
which goes wrong for a prefix-LM in two places:

* SFT / connector / MPO: TRL's vision collators tokenize each completion with
  ``processor(text=completions)``, which PaliGemma's processor refuses (it needs images). Tokenized
  by the tokenizer instead, the completion would still need token type 1;
* GRPO: TRL extends the prompt's `token_type_ids` over the completion with 0, so the log-prob of
  each completion token is computed with the tokens after it in view (a leak the loss trains on);
  and it tokenizes the prompts as one unpadded batch, on which PaliGemma's processor raises when
  their lengths differ (it builds `labels` with `np.array`).

The two mixins below fix exactly that and leave TRL's logic otherwise untouched: the collators run
with a processor view that tokenizes text without images as a suffix (type 1, no BOS, as PaliGemma's
own ``suffix=`` encoding does); GRPO tokenizes the prompts one at a time and its log-prob forward
marks the completion columns 1 (what PaliGemma's `generate` itself does for generated tokens).
For any other model both are no-ops.
"""

from __future__ import annotations

from typing import Any

import torch

from skywork_rl.model_capabilities import is_prefix_lm


class SuffixCompletions:
    """A processor view for TRL's vision collators: a call without images is a suffix (a completion).

    With images the call goes to the real processor (its prefix layout; its own `labels`, computed
    for a prefix alone, are dropped: TRL builds the labels). Without images the text is tokenized
    by the tokenizer, `token_type_ids` all 1. Every other attribute is the processor's.
    """

    def __init__(self, processor: Any) -> None:
        self._processor = processor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)

    def __call__(self, images: Any = None, text: Any = None, **kwargs: Any) -> Any:
        if images is not None:
            output = self._processor(images=images, text=text, **kwargs)
            output.pop("labels", None)
            return output
        output = self._processor.tokenizer(text=text, **kwargs)
        output["token_type_ids"] = torch.ones_like(torch.as_tensor(output["input_ids"]))
        return output


class PrefixLMCollatorMixin:
    """For SFTTrainer / DPOTrainer subclasses: a prefix-LM's completions are tokenized as its suffix."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        collator = getattr(self, "data_collator", None)
        processor = getattr(collator, "processor", None)
        if (
            processor is not None
            and is_prefix_lm(self.model)
            and not isinstance(processor, SuffixCompletions)
        ):
            collator.processor = SuffixCompletions(processor)


class PrefixLMGRPOMixin:
    """For GRPOTrainer subclasses: a prefix-LM's prompts tokenize, and its completions score causally."""

    def _tokenize_prompts(self, prompts: list[Any]) -> tuple[Any, Any, dict[str, Any]]:
        if not is_prefix_lm(self.model):  # type: ignore[attr-defined]
            return super()._tokenize_prompts(prompts)  # type: ignore[misc]
        # PaliGemmaProcessor computes `labels` with np.array over the unpadded batch TRL asks for: prompts of
        # different lengths make it raise, and equal ones would hand `generate` the prefix's labels. So
        # one prompt at a time, without labels, merged as TRL merges its per-environment prompts.
        prompt_ids: list[Any] = []
        images: list[Any] = []
        fields: dict[str, list[Any]] = {}
        for prompt in prompts:
            ids, prompt_images, multimodal = super()._tokenize_prompts([prompt])  # type: ignore[misc]
            prompt_ids += list(ids)
            images.append(prompt_images[0] if prompt_images else None)
            for key, value in multimodal.items():
                if key != "labels":
                    fields.setdefault(key, []).append(value)
        merged = {
            key: torch.cat(values)
            if isinstance(values[0], torch.Tensor)
            else [row for v in values for row in v]
            for key, values in fields.items()
        }
        return prompt_ids, images if any(i is not None for i in images) else None, merged

    def _get_per_token_logps_and_entropies(
        self, model: Any, input_ids: Any, attention_mask: Any, logits_to_keep: int, *args: Any, **kwargs: Any
    ) -> Any:
        token_type_ids = kwargs.get("token_type_ids")
        if token_type_ids is not None and is_prefix_lm(model):
            # The last `logits_to_keep` columns are the completion (TRL concatenates prompt + completion).
            token_type_ids = token_type_ids.clone()
            token_type_ids[:, -logits_to_keep:] = 1
            kwargs["token_type_ids"] = token_type_ids
            # The processor's prompt-only `labels` ride along in TRL's forward kwargs; TRL sets its own.
            kwargs.pop("labels", None)
        return super()._get_per_token_logps_and_entropies(  # type: ignore[misc]
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )
