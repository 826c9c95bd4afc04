"""Generation backends: TransformersBackend on the tiny VLM; the vLLM backend's requests and its missing-vllm error."""

from __future__ import annotations

import sys

import pytest
from PIL import Image

from skywork_rl.generation.backends import make_backend
from skywork_rl.generation.protocol import (
    GenerationBackend,
    SamplingParams,
)
from skywork_rl.generation.transformers_backend import TransformersBackend
from skywork_rl.generation.vllm_backend import VLLMBackend
from skywork_rl.generation.vllm_requests import chat_renderer, flatten_image_parts, vllm_requests


def _rows() -> list[dict]:
    image = Image.new("RGB", (32, 32), (200, 80, 0))
    with_image = {
        "id": "img",
        "prompt": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many squares?"}]}
        ],
        "images": [image],
    }
    text_only = {"id": "txt", "prompt": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]}]}
    return [with_image, text_only, with_image]


@pytest.fixture(scope="module")
def backend(tiny_internvl) -> TransformersBackend:
    return TransformersBackend(str(tiny_internvl), batch_size=2, device="cpu")


class _PlainTextProcessor:
    """The tiny model's processor with the chat template left out: a random-weight model's greedy
    text after the shared assistant header is the same for every prompt, while a prompt that ends on
    its own last word gets an answer of its own, so a swapped row shows."""

    def __init__(self, processor) -> None:
        self.processor, self.tokenizer = processor, processor.tokenizer

    def apply_chat_template(
        self, messages, add_generation_prompt: bool = True, tokenize: bool = False
    ) -> str:
        return " ".join(part["text"] for m in messages for part in m["content"] if part["type"] == "text")

    def __call__(self, **kwargs):
        return self.processor(**kwargs)


def test_transformers_backend_returns_n_texts_per_row_in_order(backend):
    assert isinstance(backend, GenerationBackend)
    plain = TransformersBackend(
        backend.model, _PlainTextProcessor(backend.processor), batch_size=2, device="cpu"
    )
    questions = ["How many squares", "Name a prime above ninety", "Which colour is this"]
    rows = [{"prompt": [{"role": "user", "content": [{"type": "text", "text": q}]}]} for q in questions]
    greedy = SamplingParams(max_new_tokens=8, temperature=0.0)
    alone = [plain.generate([r], sampling=greedy)[0][0] for r in rows]
    assert len(set(alone)) == 3  # distinct answers, or a swap would go unseen
    # three rows, batch_size 2: the order must hold within a batch and across batches
    out = plain.generate(rows, sampling=greedy, num_generations=2)
    assert out == [[text, text] for text in alone]
    sampled = backend.generate(
        _rows(), sampling=SamplingParams(max_new_tokens=6, temperature=1.0, seed=0), num_generations=3
    )
    assert [len(texts) for texts in sampled] == [3, 3, 3]


@pytest.mark.slow
def test_transformers_backend_is_reproducible_for_a_seed(backend):
    sampling = SamplingParams(max_new_tokens=6, temperature=1.0, seed=7)
    first = backend.generate(_rows(), sampling=sampling, num_generations=2)
    assert backend.generate(_rows(), sampling=sampling, num_generations=2) == first
    # rows 0 and 2 are identical prompts, so greedy decoding must give them the same text
    greedy = backend.generate(_rows(), sampling=SamplingParams(max_new_tokens=6, temperature=0.0))
    assert greedy[0] == greedy[2]


def test_make_backend_builds_transformers_by_name(tiny_internvl):
    assert isinstance(make_backend("transformers", str(tiny_internvl), device="cpu"), TransformersBackend)
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        make_backend("tgi", str(tiny_internvl))


def test_vllm_backend_without_vllm_says_how_to_install(monkeypatch, tiny_internvl):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError, installed or not
    with pytest.raises(ImportError, match=r"pip install 'skywork-rl\[vllm\]'"):
        VLLMBackend(str(tiny_internvl))
    with pytest.raises(ImportError, match=r"backend 'transformers'"):
        make_backend("vllm", str(tiny_internvl))


def test_vllm_backend_needs_a_checkpoint_path_not_a_model_object(backend):
    with pytest.raises(TypeError, match="checkpoint folder or hub id"):
        VLLMBackend(backend.model)


def test_vllm_requests_carry_images_and_the_rendered_template(backend):
    rows = _rows()
    requests = vllm_requests(rows, chat_renderer(backend.processor))
    assert [sorted(r) for r in requests] == [
        ["multi_modal_data", "prompt"],
        ["prompt"],
        ["multi_modal_data", "prompt"],
    ]
    assert requests[0]["multi_modal_data"]["image"][0].size == (32, 32)
    # the same text TransformersBackend feeds the model, image token included
    expected = backend.processor.apply_chat_template(
        rows[0]["prompt"], add_generation_prompt=True, tokenize=False
    )
    assert requests[0]["prompt"] == expected and backend.processor.image_token in expected
    assert backend.processor.image_token not in requests[1]["prompt"]


def test_vllm_requests_reject_rows_whose_images_do_not_match_the_prompt(backend):
    row = {**_rows()[0], "images": []}
    with pytest.raises(
        ValueError, match=r"row 0 \(id 'img'\): the prompt has 1 image part\(s\) but the row has 0"
    ):
        vllm_requests([row], chat_renderer(backend.processor))


def test_tokenizer_templates_get_internvl_image_placeholders(backend):
    flat = flatten_image_parts(_rows()[0]["prompt"])
    assert flat == [{"role": "user", "content": "<image>\nHow many squares?"}]
    rendered = chat_renderer(backend.tokenizer)(_rows()[0]["prompt"])
    assert "<image>\nHow many squares?" in rendered


@pytest.mark.slow  # slow lane: the fast lane keeps this module covered by test_transformers_backend_returns_n_texts_per_row_in_order
def test_seeded_generation_leaves_the_callers_rng_state_untouched(backend):
    import torch

    torch.manual_seed(123)
    before = torch.get_rng_state()
    kwargs = {"sampling": SamplingParams(max_new_tokens=6, temperature=1.0, seed=5), "num_generations": 2}
    first = backend.generate(_rows(), **kwargs)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)  # a different caller state must not change the seeded result
    assert backend.generate(_rows(), **kwargs) == first


def test_a_named_progress_bar_counts_the_prompts_and_none_is_shown_unasked(backend, capsys):
    short = SamplingParams(max_new_tokens=2, temperature=0.0)
    backend.generate(_rows(), sampling=short, progress="probes")
    shown = capsys.readouterr().err
    assert "probes:" in shown and "/3 [" in shown
    backend.generate(_rows(), sampling=short)
    assert "%|" not in capsys.readouterr().err
