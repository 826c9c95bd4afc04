"""vLLM requests from canonical rows, without vLLM: prompts, per-request sampling, what vLLM refuses.

Pure functions (plain dicts in, plain dicts out; the engine call is a parameter), so the request
building of `skywork_rl.generation.vllm_backend.VLLMBackend` is tested on machines without vLLM or a GPU.
Names and messages are read from vLLM 0.30.0 (`SamplingParams`, `vllm/v1/engine/input_processor.py`,
`vllm/multimodal/processing/context.py`, `vllm/v1/engine/parallel_sampling.py`); the refusal
words are the same in the earlier `vllm/v1/engine/processor.py` (which raised ValueError).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from skywork_rl.generation.protocol import SamplingParams, images_of


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
                f"row {i} (id {row.get('id')!r}): no 'prompt' column (canonical rows, skywork_rl/data/schema.py)"
            )
        images = images_of(row)
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


def request_seed(seed: int, position: int) -> int:
    """The sampling seed of the request at `position` of a call seeded `seed`.

    A hash, not ``seed + position``: callers seed chunk c with ``seed + c``, so a sum would give
    row 1 of chunk 0 the stream of row 0 of chunk 1. 62 bits leave room for vLLM's ``seed + k``
    of the k-th of n samples (`ParentRequest`) inside torch's seed range.
    """
    digest = hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


def sampling_kwargs(count: int, sampling: SamplingParams, num_generations: int) -> list[dict[str, Any]]:
    """`vllm.SamplingParams` keyword arguments for each of `count` requests, in order.

    Greedy decoding (temperature 0) asks for one completion (vLLM refuses n > 1 without sampling)
    that the backend repeats n times, as `TransformersBackend` does; it needs no seed.
    """
    greedy = sampling.greedy
    common = {
        "n": 1 if greedy else num_generations,
        "max_tokens": sampling.max_new_tokens,
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "repetition_penalty": sampling.repetition_penalty,  # applies to greedy decoding too
    }
    return [{**common, "seed": None if greedy else request_seed(sampling.seed, i)} for i in range(count)]


def precheck_reason(
    num_images: int, text_tokens: int | None, *, image_limit: int | None, max_model_len: int | None
) -> str | None:
    """Why vLLM would refuse a prompt, as far as can be told before calling it; None if it may pass.

    The text's token count is a lower bound of the prompt's length (image tokens come on top), and
    vLLM also refuses a prompt that leaves no room for one generated token.
    """
    if image_limit is not None and num_images > image_limit:
        return "too_many_images"
    if max_model_len is not None and text_tokens is not None and text_tokens >= max_model_len:
        return "prompt_too_long"
    return None


# vLLM's refusals of one prompt, by the words of its messages; the exception class changed
# (ValueError before, VLLMValidationError, not a ValueError, in 0.30). 0.30 also refuses a prompt of
# exactly max_model_len tokens with "... (at least 1) is longer than the maximum model length".
REFUSALS = {
    "longer than the maximum model length": "prompt_too_long",
    "may be provided in one prompt": "too_many_images",
}


def refusal_reason(exc: BaseException) -> str | None:
    """`prompt_too_long` / `too_many_images` when `exc` is vLLM refusing a prompt, else None."""
    message = str(exc)
    return next((reason for words, reason in REFUSALS.items() if words in message), None)


def generate_or_skip(
    generate: Callable[[list[Any], list[Any]], list[Any]], requests: list[Any], params: list[Any]
) -> tuple[list[Any], dict[int, str]]:
    """`generate(requests, params)` with the requests vLLM refuses left out: (outputs in request
    order, None where refused; refused position -> reason).

    vLLM checks each prompt while adding it and aborts the whole call at the first refusal, before
    any token is generated, so a refused call costs only the preprocessing; the call is halved
    until each refusal is pinned to one request. Errors that are not a prompt's refusal propagate.
    """
    outputs: list[Any] = [None] * len(requests)
    refused: dict[int, str] = {}

    def run(positions: list[int]) -> None:
        try:
            results = generate([requests[i] for i in positions], [params[i] for i in positions])
        except Exception as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
            if len(positions) == 1:
                refused[positions[0]] = reason
                return
            half = len(positions) // 2
            run(positions[:half])
            run(positions[half:])
            return
        for position, result in zip(positions, results, strict=True):
            outputs[position] = result

    if requests:
        run(list(range(len(requests))))
    return outputs, refused
