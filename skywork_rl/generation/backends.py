"""A generation backend by name, as recipes give it: ``transformers`` or ``vllm``."""

from __future__ import annotations

from typing import Any

from skywork_rl.generation import vllm_backend
from skywork_rl.generation.protocol import GenerationBackend
from skywork_rl.generation.transformers_backend import TransformersBackend


def make_backend(name: str, model: Any, **kwargs: Any) -> GenerationBackend:
    """Build a backend by name: `transformers` or `vllm` (vLLM itself is imported when a `VLLMBackend` is built)."""
    if name == "transformers":
        return TransformersBackend(model, **kwargs)
    if name == "vllm":
        return vllm_backend.VLLMBackend(model, **kwargs)  # looked up at call time: tests stand one in
    raise ValueError(f"unknown generation backend {name!r}; choose 'transformers' or 'vllm'")
