"""Generation backends for everything outside the GRPO trainer: curation rollouts, distillation, eval.

One protocol so the pass-rate filter, the distiller and the eval runner do not care whether text
comes from transformers on a CPU or from vLLM on GPUs. Rows are canonical (skywork_rl/schema.py):
the backend renders `prompt` with the processor's chat template and feeds `images` alongside.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger("skywork_rl")


@dataclass
class SamplingParams:
    """Sampling settings shared by every backend (R1V2/R1V3 evaluate with temperature 0.6, top-p 0.95)."""

    max_new_tokens: int = 512
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0


@runtime_checkable
class GenerationBackend(Protocol):
    """Anything that turns canonical rows into `num_generations` completion texts per row."""

    def generate(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        num_generations: int = 1,
        max_new_tokens: int = 512,
        temperature: float = 0.6,
        top_p: float = 0.95,
        seed: int = 0,
    ) -> list[list[str]]: ...


@contextmanager
def seeded_rng(seed: int, device: Any) -> Iterator[None]:
    """Seed the CPU generator (and `device`'s, when it is a CUDA device) for the block, then give the
    caller its own RNG state back.

    Callbacks generate in the middle of training: a bare `torch.manual_seed` there would restart
    TRL's rollout sampling from the same stream after every monitor step, identically on every
    process. `fork_rng` saves and restores the state around the seeded block instead.
    """
    import torch

    device = torch.device(device)
    cuda = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def _images_of(row: dict[str, Any]) -> list[Any]:
    images = row.get("images")
    if images is None and row.get("image") is not None:
        images = [row["image"]]
    return [img.convert("RGB") if hasattr(img, "convert") else img for img in (images or [])]


class TransformersBackend:
    """`model.generate` in batches; works on CPU and on a single GPU."""

    def __init__(
        self,
        model: Any,
        processor: Any = None,
        *,
        batch_size: int = 8,
        trust_remote_code: bool = False,
        device: str | None = None,
    ) -> None:
        if isinstance(model, str):
            from skywork_rl.models import load_model_and_processor

            model, loaded_processor = load_model_and_processor(model, trust_remote_code=trust_remote_code)
            processor = processor or loaded_processor
        if processor is None:
            raise ValueError(
                "TransformersBackend: a processor is needed when the model is given as an object"
            )
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.batch_size = batch_size
        self.tokenizer = getattr(processor, "tokenizer", processor)

    def generate(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        num_generations: int = 1,
        max_new_tokens: int = 512,
        temperature: float = 0.6,
        top_p: float = 0.95,
        seed: int = 0,
    ) -> list[list[str]]:
        """Completions for each row, in row order; seeded by `seed`, the caller's RNG state untouched."""
        with seeded_rng(seed, self.device):
            return self._generate(rows, num_generations, max_new_tokens, temperature, top_p)

    def _generate(
        self,
        rows: Sequence[dict[str, Any]],
        num_generations: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
    ) -> list[list[str]]:
        import torch

        do_sample = temperature > 0
        outputs: list[list[str]] = []
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            texts = [
                self.processor.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
                for r in batch
            ]
            images = [_images_of(r) for r in batch]
            kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
            if any(images):
                kwargs["images"] = images
            self.tokenizer.padding_side = "left"
            inputs = self.processor(**kwargs).to(self.device)
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "do_sample": do_sample,
                # greedy decoding gives one answer per prompt (transformers refuses n > 1 without
                # sampling): generate it once and repeat it n times below
                "num_return_sequences": num_generations if do_sample else 1,
                "pad_token_id": self.tokenizer.pad_token_id,
            }
            if do_sample:
                gen_kwargs.update(temperature=temperature, top_p=top_p)
            with torch.inference_mode():
                out = self.model.generate(**inputs, **gen_kwargs)
            completions = self.tokenizer.batch_decode(
                out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
            if not do_sample:
                completions = [text for text in completions for _ in range(num_generations)]
            for i in range(len(batch)):
                outputs.append(completions[i * num_generations : (i + 1) * num_generations])
        return outputs


def make_backend(name: str, model: Any, **kwargs: Any) -> GenerationBackend:
    """Build a backend by name: `transformers` or `vllm` (vLLM is imported only here, when asked for)."""
    if name == "transformers":
        return TransformersBackend(model, **kwargs)
    if name == "vllm":
        try:
            from skywork_rl.generation_vllm import VLLMBackend
        except ImportError as exc:
            raise ImportError(
                f"generation backend 'vllm' needs vLLM ({exc}); install with `pip install skywork-rl[vllm]` "
                "on a CUDA machine, or use backend: transformers"
            ) from exc
        return VLLMBackend(model, **kwargs)
    raise ValueError(f"unknown generation backend {name!r}; choose 'transformers' or 'vllm'")
