"""Critical-token entropy: word matching over tokenizer pieces, and a hand computation on a tiny VLM."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from skywork_rl.callbacks.entropy import (
    CriticalEntropy,
    critical_token_entropy,
    find_critical_positions,
    probe_sampling,
    rollout_critical_entropy,
    token_entropies,
)


def test_critical_words_match_on_word_boundaries_any_case_and_leading_space() -> None:
    pieces = ["Hmm", ",", " wait", " but", "ton", " But", " Alter", "natively", " waiting", "\nHowever"]
    found = find_critical_positions(pieces, ["wait", "but", "hmm", "alternatively", "however"])
    assert found == [(0, "hmm"), (2, "wait"), (5, "but"), (6, "alternatively"), (9, "however")]


def test_token_entropies_equal_the_closed_form() -> None:
    uniform = torch.zeros(3, 8)
    assert torch.allclose(token_entropies(uniform), torch.full((3,), math.log(8)))
    peaked = torch.tensor([[100.0, 0.0, 0.0]])
    assert token_entropies(peaked).item() < 1e-6
    logits = torch.randn(4, 16)
    assert torch.allclose(token_entropies(logits), token_entropies(torch.log_softmax(logits, -1)), atol=1e-5)


def test_no_critical_token_gives_no_mean_rather_than_zero() -> None:
    class Pieces:
        def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
            return " ok"

    result = critical_token_entropy(torch.zeros(2, 4), [1, 2], Pieces(), ["wait"])
    assert result.count == 0 and result.mean is None
    with pytest.raises(ValueError, match="2 tokens but 3 logit rows"):
        critical_token_entropy(torch.zeros(3, 4), [1, 2], Pieces(), ["wait"])


def _entropy_by_hand(row: list[float]) -> float:
    top = max(row)
    exps = [math.exp(x - top) for x in row]
    total = sum(exps)
    return -sum((e / total) * math.log(e / total) for e in exps if e > 0)


def test_rollout_entropy_equals_a_hand_computation_on_a_tiny_model(tiny_internvl: Path) -> None:
    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.miniature.synthetic import build_dataset

    model, processor = load_model_and_processor(str(tiny_internvl))
    tokenizer = processor.tokenizer
    row = build_dataset(1, seed=3)[0]
    prompt = processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=[[row["images"][0].convert("RGB")]], return_tensors="pt")
    torch.manual_seed(7)  # sampled, not greedy: a random-weight model's greedy text is all newlines
    with torch.inference_mode():
        sequence = model.generate(
            **inputs,
            max_new_tokens=40,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            pad_token_id=tokenizer.pad_token_id,
        )
    prompt_len = inputs["input_ids"].shape[1]
    completion = sequence[0, prompt_len:].tolist()
    if tokenizer.eos_token_id in completion:
        completion = completion[: completion.index(tokenizer.eos_token_id)]
    text = "".join(tokenizer.decode([t]) for t in completion)
    # plant the critical word: a whole word the sampled rollout is known to contain
    word = next(w for w in re.findall(r"(?<![\w'])[A-Za-z]{2,}(?![\w'])", text))

    # by hand: a fresh forward pass over prompt + completion; the distribution that produced
    # completion token t is the logits row at position prompt_len - 1 + t
    with torch.inference_mode():
        full = model(
            input_ids=torch.tensor([inputs["input_ids"][0].tolist() + completion]),
            pixel_values=inputs["pixel_values"],
        ).logits[0]
    hand = [
        _entropy_by_hand(full[prompt_len - 1 + t].tolist())
        for t, _ in find_critical_positions([tokenizer.decode([i]) for i in completion], [word])
    ]
    assert hand

    result, texts = rollout_critical_entropy(
        model, processor, [row], words=[word], sampling=probe_sampling(max_new_tokens=40, seed=7)
    )
    assert isinstance(result, CriticalEntropy) and result.count == len(hand)
    assert result.mean == pytest.approx(sum(hand) / len(hand), abs=1e-4)
    assert result.values == pytest.approx(hand, abs=1e-4)
    assert word.lower() in texts[0].lower()


@pytest.mark.slow
def test_seeded_rollout_leaves_the_callers_rng_state_untouched(tiny_internvl: Path) -> None:
    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.miniature.synthetic import build_dataset

    model, processor = load_model_and_processor(str(tiny_internvl))
    data = build_dataset(2, seed=4)
    rows = [data[i] for i in range(2)]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    kwargs = {
        "words": ["the", "a"],
        "num_generations": 2,
        "sampling": probe_sampling(max_new_tokens=12, seed=3),
    }
    first = rollout_critical_entropy(model, processor, rows, **kwargs)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)  # a different caller state must not change the seeded result
    second = rollout_critical_entropy(model, processor, rows, **kwargs)
    assert second[1] == first[1] and second[0].values == first[0].values


def test_step_entropies_come_from_raw_logits_before_the_configs_repetition_penalty_and_temperature(
    tiny_internvl: Path,
) -> None:
    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.generation.protocol import SamplingParams
    from skywork_rl.generation.transformers_backend import TransformersBackend
    from skywork_rl.miniature.synthetic import build_dataset

    model, processor = load_model_and_processor(str(tiny_internvl))
    # a checkpoint's generation config may carry a repetition penalty: it must not reach the entropy
    model.generation_config.repetition_penalty = 3.0
    row = build_dataset(1, seed=3)[0]
    backend = TransformersBackend(model, processor, batch_size=1, device="cpu")
    settings = {"max_new_tokens": 12, "temperature": 0.5, "top_p": 0.8}
    sampling = SamplingParams(**settings, seed=0)
    [[completion]] = backend.generate_completions([row], sampling=sampling, step_statistic=token_entropies)

    # the same rollout, every step's raw logits kept by transformers itself
    prompt = processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=[[row["images"][0].convert("RGB")]], return_tensors="pt")
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            do_sample=True,
            pad_token_id=processor.tokenizer.pad_token_id,
            output_logits=True,  # before every processor
            output_scores=True,  # after all of them
            return_dict_in_generate=True,
            **settings,
        )
    n = len(completion.token_ids)
    assert n > 1 and out.sequences[0, inputs["input_ids"].shape[1] :].tolist()[:n] == completion.token_ids
    raw = token_entropies(torch.stack(out.logits, dim=1))[0, :n]
    processed = token_entropies(torch.stack(out.scores, dim=1))[0, :n]
    assert completion.step_values == pytest.approx(raw.tolist(), abs=1e-5)
    assert not torch.allclose(raw, processed, atol=1e-2)  # the processors did change the distribution


def test_rollout_entropy_keeps_no_full_vocabulary_logits(tiny_internvl: Path) -> None:
    from skywork_rl.families.parts import load_model_and_processor
    from skywork_rl.miniature.synthetic import build_dataset

    model, processor = load_model_and_processor(str(tiny_internvl))
    requests: list[dict] = []
    generate = model.generate

    def generate_and_record(*args, **kwargs):
        requests.append(kwargs)
        return generate(*args, **kwargs)

    model.generate = generate_and_record
    result, texts = rollout_critical_entropy(
        model,
        processor,
        [build_dataset(1, seed=3)[0]],
        words=["the"],
        sampling=probe_sampling(max_new_tokens=8, seed=1),
    )
    assert len(requests) == 1 and len(texts) == 1
    assert not requests[0].get("output_logits") and not requests[0].get("output_scores")
