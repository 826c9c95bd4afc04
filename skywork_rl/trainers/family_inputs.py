"""Where a family's processor or attention differs from what TRL's trainers assume, and the fix.

TRL builds prompt + completion batches the same way for every VLM. Three families' inputs need more,
found by running every family's tiny checkpoint through the stages (`tests/families`):

* PaliGemma is a prefix-LM: it attends bidirectionally over its prefix (the images, `<bos>`, the
  prompt and the newline its processor appends) and causally over the suffix, told apart by
  `token_type_ids` (0 = prefix, 1 = suffix).
  - SFT / connector / MPO: TRL's vision collators tokenize each completion with
    ``processor(text=completions)``, which PaliGemma's processor refuses (it needs images); the
    collators here run with a processor view that tokenizes text without images as the suffix
    (token type 1, no BOS): the batch is exactly PaliGemma's own ``suffix=`` encoding.
  - GRPO: TRL extends the prompt's `token_type_ids` over the completion with 0, so each completion
    token's log-prob would be computed with the tokens after it in view (a leak the loss trains
    on); the log-prob forward here marks the completion 1, as PaliGemma's `generate` does for the
    tokens it generates. Its processor also raises on TRL's unpadded batch of prompts of different
    lengths (it builds `labels` with `np.array`), so its prompts are tokenized one at a time.
* Mistral 3's PixtralProcessor returns tensors by default, so TRL's unpadded GRPO prompt batch
  fails on prompts of different lengths: the prompt text is asked for as lists (what TRL expects;
  it pads itself), its images still come batched as the processor pads them. Only processors whose
  defaults return text tensors are asked (`returns_text_tensors`).

For any other family the mixins change nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from skywork_rl.families.capabilities import is_prefix_lm


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


class FamilyCollatorMixin:
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


def returns_text_tensors(processor: Any) -> bool:
    """Whether the processor's own defaults return its text as tensors (Pixtral's: `text_kwargs`).

    Only such a processor is asked for lists. Asking every processor breaks the ones whose
    `apply_chat_template` passes `return_tensors` itself (SmolVLM's passes None, and a value given
    twice, top-level and in `text_kwargs`, is an error), and they return lists already.
    """
    defaults = getattr(type(processor), "text_kwargs", None)
    return isinstance(defaults, dict) and defaults.get("return_tensors") is not None


class FamilyGRPOMixin:
    """For GRPOTrainer subclasses: prompts tokenize for every family, a prefix-LM scores causally."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if returns_text_tensors(self.processing_class):  # type: ignore[attr-defined]
            self._ask_for_prompt_lists()

    def _ask_for_prompt_lists(self) -> None:
        """TRL's prompt tokenization wants lists (it pads them itself); a user's own setting wins."""
        template_kwargs = dict(self.chat_template_kwargs)  # type: ignore[has-type]
        processor_kwargs = dict(template_kwargs.get("processor_kwargs") or {})
        processor_kwargs["text_kwargs"] = {
            "return_tensors": None,
            **(processor_kwargs.get("text_kwargs") or {}),
        }
        template_kwargs["processor_kwargs"] = processor_kwargs
        self.chat_template_kwargs = template_kwargs

    def _tokenize_prompts(self, prompts: list[Any]) -> tuple[Any, Any, dict[str, Any]]:
        if not is_prefix_lm(self.model):  # type: ignore[attr-defined]
            return super()._tokenize_prompts(prompts)  # type: ignore[misc]
        # One prompt at a time, without the processor's prefix `labels`, merged as TRL merges its
        # per-environment prompts (image tensors concatenated, per-token lists kept per prompt).
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
