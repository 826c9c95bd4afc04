"""The rehearsal's tiny stand-in models (`skywork_rl/runner/rehearsal_models.py`): the real classes, loaded by
path, a scripted policy whose samples the recipes' selection rules can keep (and drop)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from skywork_rl.runner.rehearsal_models import ANSWERS, StandinModelError, build_standin_model, standin_arch


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    base = tmp_path_factory.mktemp("standin-models")
    return {
        role: build_standin_model(name, role, base)
        for name, role in (
            ("OpenGVLab/InternVL3-38B-hf", "policy"),
            ("Qwen/Qwen2.5-7B-Instruct", "verifier"),
            ("Skywork/Skywork-VL-Reward-7B", "reward_model"),
        )
    }


def test_scripted_policy_writes_well_formed_answers_spread_over_the_answer_set(standins):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from skywork_rl.callbacks.entropy import DEFAULT_CRITICAL_WORDS
    from skywork_rl.rewards.extract import last_boxed
    from skywork_rl.rewards.format import strict_format_score

    path = standins["policy"]
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    assert model.config.model_type == "internvl"  # InternVL3's class, loaded by path
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Which option is right? A, B, C or D."}]}
    ]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    torch.manual_seed(0)
    out = model.generate(
        **inputs, do_sample=True, temperature=1.0, max_new_tokens=24, num_return_sequences=32
    )
    texts = processor.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert all(strict_format_score(t) == 1.0 for t in texts), texts
    # a critical word of R1V3's select stage (one token, as it matches them), which ranks by its entropy
    assert all(any(w in t.split() for w in DEFAULT_CRITICAL_WORDS) for t in texts), texts
    answers = Counter(last_boxed(t) for t in texts)
    assert set(answers) == set(ANSWERS)  # each answer drawn: a gold in the set is right on 1 in 4 samples


def test_verifier_standin_is_a_text_only_causal_lm(standins):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(standins["verifier"])
    assert config.model_type == "qwen2" and not hasattr(config, "vision_config")
    AutoModelForCausalLM.from_pretrained(standins["verifier"])


def test_reward_standin_scores_rollouts_on_the_papers_margin_scale(standins):
    """Two rollouts that differ in their answer score further apart than R1V2's margin of 15, sometimes."""
    from skywork_rl.rewards.reward_model import RewardModelReward

    rm = RewardModelReward(str(standins["reward_model"]))
    prompt = [
        {"role": "user", "content": [{"type": "text", "text": "What is the area? A. 1 B. 2 C. 3 D. 4"}]}
    ]
    completions = [
        [{"role": "assistant", "content": f"<think> rehearsal </think> \\boxed{{{a}}}"}] for a in ANSWERS
    ]
    scores = rm(prompts=[prompt] * len(completions), completions=completions)
    assert max(scores) - min(scores) >= 15, scores
    assert json.loads((standins["reward_model"] / "standin.json").read_text())["role"] == "reward_model"


def test_unknown_real_model_names_the_table_to_extend():
    with pytest.raises(StandinModelError, match="STANDIN_ARCH"):
        standin_arch("someone/Unknown-VLM-70B")
