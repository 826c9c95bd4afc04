"""vLLM generation backend: curation rollouts, distillation and eval at GPU speed.

Implements the `GenerationBackend` protocol of `skywork_rl.generation` with vLLM's offline
`LLM.generate`. vLLM is imported when a backend is built, never at module import, so data_prep and
eval import this module (and the CPU test suite runs) without it; a missing vLLM is an ImportError
that says how to install it. GRPO rollouts do not come through here: TRL's `GRPOTrainer` drives
vLLM itself (`training.use_vllm`, colocate or server mode; see recipes/README.md).

Rows are canonical (skywork_rl/schema.py). Prompts are rendered with the checkpoint's own chat
template (the processor's, as `TransformersBackend` does, so both backends see the same text) and
sent as vLLM multimodal requests: ``{"prompt": text, "multi_modal_data": {"image": [PIL, ...]}}``,
the form Skywork's own inference script uses for the released R1V checkpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from skywork_rl.generation import _images_of

logger = logging.getLogger("skywork_rl")

INSTALL_HINT = (
    "install it with `pip install 'skywork-rl[vllm]'` on a Linux machine with CUDA GPUs "
    "(or use the Docker image), or choose backend 'transformers'"
)


def import_vllm() -> Any:
    """The `vllm` module, or an ImportError that names the fix (vLLM is an optional, GPU-only extra)."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(
            f"the vLLM generation backend needs the `vllm` package ({exc}); {INSTALL_HINT}"
        ) from exc
    return vllm


def chat_renderer(processor: Any) -> Callable[[list[dict[str, Any]]], str]:
    """`messages -> prompt text` with the generation prompt, from a processor or a bare tokenizer.

    A processor's template places its own image token for each image part. A bare tokenizer (the
    remote-code InternVL-Chat / Skywork-R1V checkpoints) has string-content templates, so image parts
    become ``<image>\n`` lines, the placeholder vLLM's InternVL-Chat model expands (as in Skywork's
    inference script).
    """
    is_processor = hasattr(processor, "image_processor")

    def render(messages: list[dict[str, Any]]) -> str:
        if not is_processor:
            messages = flatten_image_parts(messages)
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    return render


def flatten_image_parts(
    messages: list[dict[str, Any]], placeholder: str = "<image>\n"
) -> list[dict[str, Any]]:
    """Messages with list content turned into strings, each image part into `placeholder`."""
    flat: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            text = "".join(
                placeholder if part.get("type") == "image" else (part.get("text") or "") for part in content
            )
            message = {**message, "content": text}
        flat.append(message)
    return flat


def vllm_requests(
    rows: Sequence[dict[str, Any]], render: Callable[[list[dict[str, Any]]], str]
) -> list[dict[str, Any]]:
    """vLLM prompt dicts for canonical rows; text-only rows carry no `multi_modal_data`.

    A row whose prompt has a different number of image parts than it has images is an error here,
    naming the row, rather than a shape mismatch deep inside vLLM's multimodal processor.
    """
    requests: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if "prompt" not in row:
            raise ValueError(
                f"row {i} (id {row.get('id')!r}): no 'prompt' column (canonical rows, skywork_rl/schema.py)"
            )
        images = _images_of(row)
        slots = _image_slots(row["prompt"])
        if slots is not None and slots != len(images):
            raise ValueError(
                f"row {i} (id {row.get('id')!r}): the prompt has {slots} image part(s) but the row has "
                f"{len(images)} image(s); each image needs one {{'type': 'image'}} part in the prompt"
            )
        request: dict[str, Any] = {"prompt": render(row["prompt"])}
        if images:
            request["multi_modal_data"] = {"image": images}
        requests.append(request)
    return requests


def _image_slots(messages: Any) -> int | None:
    """Image parts in chat messages; None for a plain-string prompt (it cannot be checked)."""
    if isinstance(messages, str):
        return None
    count = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image")
    return count


class VLLMBackend:
    """Offline vLLM engine over a checkpoint folder or hub id, tensor-parallel over local GPUs.

    `max_images_per_prompt` sets vLLM's `limit_mm_per_prompt` (raise it for rows with more images;
    Skywork's inference script allows 20). Extra keyword arguments go to `vllm.LLM` unchanged.
    """

    def __init__(
        self,
        model: Any,
        processor: Any = None,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        max_images_per_prompt: int = 8,
        seed: int = 0,
        **llm_kwargs: Any,
    ) -> None:
        if not isinstance(model, str):
            raise TypeError(
                "VLLMBackend: vLLM loads weights itself, so give the model as a checkpoint folder or hub id "
                f"(got a {type(model).__name__}); save the model with save_pretrained first"
            )
        vllm = import_vllm()
        if processor is None:
            processor = _load_processor(model, trust_remote_code)
        self.render = chat_renderer(processor)
        self._sampling_params = vllm.SamplingParams
        kwargs: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "dtype": dtype,
            "trust_remote_code": trust_remote_code,
            "limit_mm_per_prompt": {"image": max_images_per_prompt},
            "seed": seed,
            **llm_kwargs,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        logger.info("vLLM engine for %s (tensor_parallel_size=%d)", model, tensor_parallel_size)
        self.llm = vllm.LLM(**kwargs)

    def generate(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        num_generations: int = 1,
        max_new_tokens: int = 512,
        temperature: float = 0.6,
        top_p: float = 0.95,
        seed: int = 0,
        repetition_penalty: float = 1.0,
    ) -> list[list[str]]:
        """`num_generations` texts per row, in row order (vLLM batches and schedules internally)."""
        if not rows:
            return []
        params = self._sampling_params(
            n=num_generations,
            max_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p if temperature > 0 else 1.0,
            seed=seed,
            repetition_penalty=repetition_penalty,
        )
        outputs = self.llm.generate(vllm_requests(rows, self.render), sampling_params=params, use_tqdm=False)
        return [[choice.text for choice in out.outputs] for out in outputs]


def _load_processor(model: str, trust_remote_code: bool) -> Any:
    """The checkpoint's processor for its chat template; remote-code checkpoints (InternVL-Chat,
    Skywork-R1V) often ship only a tokenizer, whose template then renders the prompt."""
    from transformers import AutoProcessor, AutoTokenizer

    try:
        return AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        logger.info("no processor for %s (%s); rendering prompts with its tokenizer", model, exc)
        return AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
