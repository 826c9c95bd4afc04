"""The vLLM backend without vLLM: request building, per-request seeds, refused rows skipped and counted.

vLLM needs CUDA GPUs, so these tests check what the backend sends and how it reads the answers:
the pure request builders (`skywork_rl.generation.vllm_requests`) directly, and `VLLMBackend` against a
stand-in `vllm` module that keeps the parts of vLLM 0.30's contract the backend relies on
(`SamplingParams` refusing n > 1 for greedy decoding; `LLM.generate` checking each prompt as it is
added and aborting the whole call at the first refusal, with vLLM's own messages; the k-th of n
samples drawn with ``seed + k``).
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import replace
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from skywork_rl.generation.protocol import Generations, SamplingParams, not_generated
from skywork_rl.generation.vllm_backend import VLLMBackend
from skywork_rl.generation.vllm_requests import (
    generate_or_skip,
    precheck_reason,
    refusal_reason,
    request_seed,
    sampling_kwargs,
)

SAMPLED = SamplingParams(max_new_tokens=16, temperature=1.0, top_p=0.9)  # with num_generations=3


class VLLMValidationError(Exception):
    """vLLM 0.30's refusal class: not a ValueError."""


class FakeSamplingParams:
    """`vllm.SamplingParams` as far as the backend uses it: its field names, and greedy refusing n > 1."""

    FIELDS = {"n", "max_tokens", "temperature", "top_p", "seed", "repetition_penalty"}

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - self.FIELDS
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword arguments {sorted(unknown)}")
        self.n, self.temperature, self.top_p, self.seed = 1, 1.0, 1.0, None
        self.repetition_penalty, self.max_tokens = 1.0, 16
        self.__dict__.update(kwargs)
        if self.temperature < 1e-5 and self.n > 1:
            raise VLLMValidationError(f"n must be 1 when using greedy sampling, got {self.n}.")


class FakeLLM:
    """`vllm.LLM`: each prompt's length is its text tokens plus `IMAGE_TOKENS` per image, checked
    in order as vLLM adds requests; a sample's text names the seed it was drawn with."""

    IMAGE_TOKENS = 80
    tokenizer: Any = None
    last: FakeLLM | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        model_config = SimpleNamespace(max_model_len=kwargs.get("max_model_len", 4096))
        self.llm_engine = SimpleNamespace(model_config=model_config)
        self.calls: list[list[str]] = []
        self.params: list[FakeSamplingParams] = []
        FakeLLM.last = self

    def generate(self, prompts: list[dict], sampling_params: list[FakeSamplingParams], use_tqdm: bool = True):
        assert len(sampling_params) == len(prompts)
        self.calls.append([p["prompt"] for p in prompts])
        limit = self.kwargs["limit_mm_per_prompt"]["image"]
        max_len = self.llm_engine.model_config.max_model_len
        for prompt in prompts:
            images = len(prompt.get("multi_modal_data", {}).get("image", []))
            if images > limit:
                raise VLLMValidationError(f"At most {limit} image(s) may be provided in one prompt.")
            length = len(self.tokenizer(prompt["prompt"])["input_ids"]) + self.IMAGE_TOKENS * images
            if length > max_len:
                raise VLLMValidationError(
                    f"The decoder prompt (length {length}) is longer than the maximum model length of {max_len}."
                )
        self.params += sampling_params
        return [
            SimpleNamespace(
                outputs=[SimpleNamespace(text=self._sample(prompt, params, k)) for k in range(params.n)]
            )
            for prompt, params in zip(prompts, sampling_params, strict=True)
        ]

    @staticmethod
    def _sample(prompt: dict, params: FakeSamplingParams, k: int) -> str:
        if params.temperature < 1e-5:
            return f"greedy:{zlib.crc32(prompt['prompt'].encode())}"
        return f"seed:{params.seed + k}"


@pytest.fixture
def fake_vllm(monkeypatch, tiny_internvl):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(tiny_internvl))
    module = ModuleType("vllm")
    module.LLM, module.SamplingParams = FakeLLM, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(FakeLLM, "tokenizer", processor.tokenizer)
    return processor


def _row(row_id: str, text: str, images: int = 0) -> dict:
    content = [{"type": "image"}] * images + [{"type": "text", "text": text}]
    row = {"id": row_id, "prompt": [{"role": "user", "content": content}]}
    if images:
        row["images"] = [Image.new("RGB", (16, 16), (i * 60, 0, 0)) for i in range(images)]
    return row


def _backend(processor: Any, **kwargs: Any) -> VLLMBackend:
    return VLLMBackend("checkpoint", processor, max_model_len=160, max_images_per_prompt=2, **kwargs)


def test_each_request_gets_its_own_reproducible_seed():
    chunk0 = sampling_kwargs(4, replace(SAMPLED, seed=0), 3)
    chunk1 = sampling_kwargs(4, replace(SAMPLED, seed=1), 3)
    assert [p["seed"] for p in chunk0] == [request_seed(0, i) for i in range(4)]
    assert sampling_kwargs(4, replace(SAMPLED, seed=0), 3) == chunk0  # reproducible
    # callers seed chunk c with seed + c: row 1 of chunk 0 and row 0 of chunk 1 must not share a stream,
    # nor may vLLM's seed + k of sample k reach the next row's seeds
    seeds = [p["seed"] + k for p in chunk0 + chunk1 for k in range(3)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= request_seed(s, i) < 2**62 for s in range(3) for i in range(100))
    assert all(p["n"] == 3 and p["temperature"] == 1.0 and p["top_p"] == 0.9 for p in chunk0)


def test_greedy_asks_for_one_unseeded_completion_and_repetition_penalty_passes_through():
    greedy = sampling_kwargs(2, replace(SAMPLED, temperature=0.0, seed=5, repetition_penalty=1.05), 3)
    assert (
        greedy
        == [
            {
                "n": 1,
                "max_tokens": 16,
                "temperature": 0.0,
                "top_p": 1.0,
                "repetition_penalty": 1.05,
                "seed": None,
            }
        ]
        * 2
    )
    sampled = sampling_kwargs(1, replace(SAMPLED, seed=5, repetition_penalty=1.05), 3)
    assert sampled[0]["repetition_penalty"] == 1.05


def test_precheck_refuses_what_vllm_would_refuse_before_the_call():
    limits = {"image_limit": 2, "max_model_len": 100}
    assert precheck_reason(3, 10, **limits) == "too_many_images"
    assert precheck_reason(0, 100, **limits) == "prompt_too_long"  # no room for one generated token
    assert precheck_reason(2, 99, **limits) is None  # image tokens come on top: vLLM may still refuse
    assert precheck_reason(9, 10**6, image_limit=None, max_model_len=None) is None


def test_refusals_are_recognised_by_vllms_words_and_nothing_else():
    assert refusal_reason(VLLMValidationError("At most 2 image(s) may be provided in one prompt.")) == (
        "too_many_images"
    )
    too_long = "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure"
    assert refusal_reason(ValueError(too_long)) == "prompt_too_long"
    exact = "The decoder prompt (length 4096) plus the number of requested output tokens (at least 1) is "
    assert refusal_reason(VLLMValidationError(exact + "longer than the maximum model length of 4096.")) == (
        "prompt_too_long"
    )
    assert refusal_reason(RuntimeError("CUDA out of memory")) is None


def test_refused_requests_are_pinned_by_halving_and_other_errors_propagate():
    calls: list[list[str]] = []

    def generate(requests: list[str], params: list[int]) -> list[str]:
        calls.append(requests)
        for request in requests:
            if request.startswith("long"):
                raise VLLMValidationError("prompt is longer than the maximum model length of 8")
        return [f"{r}/{p}" for r, p in zip(requests, params, strict=True)]

    requests = ["a", "long1", "b", "c", "d", "long2", "e", "f"]
    outputs, refused = generate_or_skip(generate, requests, list(range(8)))
    assert refused == {1: "prompt_too_long", 5: "prompt_too_long"}
    assert outputs == ["a/0", None, "b/2", "c/3", "d/4", None, "e/6", "f/7"]  # each with its own params
    assert len(calls) == 11  # 8 -> 4 + 4 -> (2 + 2) + (2 + 2) -> the four singles of the two refused pairs
    assert generate_or_skip(generate, [], []) == ([], {})

    def broken(requests: list[str], params: list[int]) -> list[str]:
        raise RuntimeError("engine died")

    with pytest.raises(RuntimeError, match="engine died"):
        generate_or_skip(broken, requests, list(range(8)))


def test_vllm_backend_skips_and_counts_the_rows_vllm_refuses_and_generates_the_rest(fake_vllm, caplog):
    backend = _backend(fake_vllm)
    rows = [
        _row("fine", "How many squares?", images=1),
        _row("three-images", "Compare them.", images=3),  # over limit_mm_per_prompt: never sent
        _row("tall", "Compare both.", images=2),  # its image tokens overflow: only vLLM can tell
        _row("essay", "word " * 200),  # the text alone fills max_model_len: never sent
        _row("text", "2+2?"),
    ]
    with caplog.at_level("WARNING", logger="skywork_rl"):
        out = backend.generate(rows, sampling=replace(SAMPLED, seed=3), num_generations=3)
    assert isinstance(out, Generations) and len(out) == 5
    assert out.skipped == {1: "too_many_images", 2: "prompt_too_long", 3: "prompt_too_long"}
    assert not_generated(out) == out.skipped
    assert [len(texts) for texts in out] == [3, 0, 0, 0, 3]
    # each row samples with its own seed (vLLM's seed + k for sample k), from its position in the call
    assert out[0] == [f"seed:{request_seed(3, 0) + k}" for k in range(3)]
    assert out[4] == [f"seed:{request_seed(3, 4) + k}" for k in range(3)]
    sent = {prompt for call in FakeLLM.last.calls for prompt in call}
    assert len(sent) == 3  # fine, tall and text; the prechecked rows were never sent
    assert backend.skipped == {"too_many_images": 1, "prompt_too_long": 2}
    assert "3 of 5 rows skipped" in caplog.text and "'three-images', 'tall', 'essay'" in caplog.text


def test_a_rows_samples_do_not_depend_on_the_rows_refused_beside_it(fake_vllm):
    """A resumed chunk samples what the uninterrupted one did: a row's seed comes from the call's
    seed and its position, whether or not rows before it were refused."""
    backend = _backend(fake_vllm)
    last = _row("last", "Name a prime.", images=1)
    seeded = {"sampling": replace(SAMPLED, seed=9), "num_generations": 3}
    with_refusal = backend.generate([_row("tall", "Compare both.", images=2), last], **seeded)
    without = backend.generate([_row("short", "Hi."), last], **seeded)
    assert with_refusal.skipped == {0: "prompt_too_long"} and without.skipped == {}
    assert with_refusal[1] == without[1] == [f"seed:{request_seed(9, 1) + k}" for k in range(3)]


def test_vllm_greedy_with_n_samples_repeats_the_one_answer(fake_vllm):
    backend = _backend(fake_vllm)
    rows = [_row("a", "How many squares?", images=1), _row("b", "2+2?")]
    out = backend.generate(
        rows, sampling=replace(SAMPLED, temperature=0.0, repetition_penalty=1.05), num_generations=3
    )
    assert [len(set(texts)) for texts in out] == [1, 1] and [len(texts) for texts in out] == [3, 3]
    assert out[0][0] != out[1][0]
    assert all(p.n == 1 and p.seed is None and p.repetition_penalty == 1.05 for p in FakeLLM.last.params)


def test_vllm_engine_gets_the_image_limit_and_context_length(fake_vllm):
    backend = _backend(fake_vllm, tensor_parallel_size=2, enforce_eager=True)
    kwargs = FakeLLM.last.kwargs
    assert kwargs["limit_mm_per_prompt"] == {"image": 2} and kwargs["max_model_len"] == 160
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["enforce_eager"] is True
    assert (backend.max_model_len, backend.image_limit) == (160, 2)
    assert backend.generate([], sampling=SAMPLED, num_generations=3) == []
