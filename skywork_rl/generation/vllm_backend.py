"""vLLM generation backend: curation rollouts, distillation and eval at GPU speed.

Implements the `GenerationBackend` protocol of `skywork_rl.generation.protocol` with vLLM's offline
`LLM.generate`. vLLM is imported when a backend is built, never at module import, so data_prep and
eval import this module (and the CPU test suite runs) without it; a missing vLLM is an ImportError
that says how to install it. GRPO rollouts do not come through here: TRL's `GRPOTrainer` drives
vLLM itself (`training.use_vllm`, colocate or server mode; see recipes/README.md).

Rows are canonical (skywork_rl/data/schema.py). Prompts are rendered with the checkpoint's own chat
template (the processor's, as `TransformersBackend` does, so both backends see the same text) and
sent as vLLM multimodal requests: ``{"prompt": text, "multi_modal_data": {"image": [PIL, ...]}}``,
the form Skywork's own inference script uses for the released R1V checkpoints.

What vLLM would refuse is dropped and counted, never a failed chunk (a refused prompt fails the
whole `LLM.generate` call, and a chunked job would fail the same way on every re-run): a row with
more images than `limit_mm_per_prompt`, or whose text alone fills `max_model_len`, is skipped
before the call; one whose image tokens overflow (only vLLM's processor knows their count) is found
by halving the call around vLLM's refusal. Skipped rows get an empty completion list and their
reason in `Generations.skipped`. Each request has its own seed, derived from the call's seed and
the row's position (`request_seed`), so a row samples the same texts whatever else is in the
call, and a resumed chunked job samples what an uninterrupted one would. APIs used (vLLM 0.22 to
0.31, read from 0.30.0): `LLM.generate(prompts, sampling_params=[one per prompt])`,
`SamplingParams(n, max_tokens, temperature, top_p, seed, repetition_penalty)`,
`LLM(limit_mm_per_prompt=...)`, `llm.llm_engine.model_config.max_model_len`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from skywork_rl.generation.protocol import Generations, SamplingParams
from skywork_rl.generation.vllm_requests import (
    chat_renderer,
    generate_or_skip,
    precheck_reason,
    sampling_kwargs,
    vllm_requests,
)

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


class VLLMBackend:
    """Offline vLLM engine over a checkpoint folder or hub id, tensor-parallel over local GPUs.

    `max_images_per_prompt` sets vLLM's `limit_mm_per_prompt` (raise it for rows with more images;
    Skywork's inference script allows 20). Extra keyword arguments go to `vllm.LLM` unchanged.
    Rows vLLM would refuse are skipped (see the module docstring); `skipped` counts them by reason
    over the backend's life.
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
        self.tokenizer = getattr(processor, "tokenizer", processor)
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
        self.image_limit: int | None = (kwargs["limit_mm_per_prompt"] or {}).get("image")
        logger.info("vLLM engine for %s (tensor_parallel_size=%d)", model, tensor_parallel_size)
        self.llm = vllm.LLM(**kwargs)
        # the engine's own limit: `max_model_len` as given, or derived from the model's config
        engine = getattr(self.llm, "llm_engine", None)
        self.max_model_len: int | None = getattr(getattr(engine, "model_config", None), "max_model_len", None)
        self.skipped: Counter[str] = Counter()

    def generate(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        sampling: SamplingParams | None = None,
        num_generations: int = 1,
    ) -> Generations:
        """`num_generations` texts per row, in row order (vLLM batches and schedules internally); a
        row vLLM would refuse gets none, its reason in the result's ``skipped``."""
        requests = vllm_requests(rows, self.render)
        sampling = sampling or SamplingParams()
        params = sampling_kwargs(len(requests), sampling, num_generations)
        skipped = {
            i: reason for i, request in enumerate(requests) if (reason := self._precheck(request)) is not None
        }
        to_run = [i for i in range(len(requests)) if i not in skipped]
        outputs, refused = generate_or_skip(
            lambda reqs, kws: self.llm.generate(
                reqs, sampling_params=[self._sampling_params(**kw) for kw in kws], use_tqdm=False
            ),
            [requests[i] for i in to_run],
            [params[i] for i in to_run],
        )
        skipped.update({to_run[j]: reason for j, reason in refused.items()})
        texts: list[list[str]] = [[] for _ in requests]
        for i, out in zip(to_run, outputs, strict=True):
            if out is not None:
                choices = [choice.text for choice in out.outputs]
                texts[i] = choices[:1] * num_generations if sampling.greedy else choices
        self._report(rows, skipped)
        return Generations(texts, skipped)

    def _precheck(self, request: dict[str, Any]) -> str | None:
        images = len((request.get("multi_modal_data") or {}).get("image", []))
        tokens = None
        if self.max_model_len is not None:
            tokens = len(self.tokenizer(request["prompt"], add_special_tokens=False)["input_ids"])
        return precheck_reason(images, tokens, image_limit=self.image_limit, max_model_len=self.max_model_len)

    def _report(self, rows: Sequence[dict[str, Any]], skipped: dict[int, str]) -> None:
        if not skipped:
            return
        self.skipped.update(skipped.values())
        ids = [rows[i].get("id", f"#{i}") for i in sorted(skipped)]
        logger.warning(
            "vLLM: %d of %d rows skipped (%s; max_model_len=%s, images per prompt <= %s): %s%s",
            len(skipped),
            len(rows),
            ", ".join(f"{r}={n}" for r, n in sorted(Counter(skipped.values()).items())),
            self.max_model_len,
            self.image_limit,
            ids[:10],
            " ..." if len(ids) > 10 else "",
        )


def _load_processor(model: str, trust_remote_code: bool) -> Any:
    """The checkpoint's processor for its chat template; remote-code checkpoints (InternVL-Chat,
    Skywork-R1V) often ship only a tokenizer, whose template then renders the prompt."""
    from transformers import AutoProcessor, AutoTokenizer

    try:
        return AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        logger.info("no processor for %s (%s); rendering prompts with its tokenizer", model, exc)
        return AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
