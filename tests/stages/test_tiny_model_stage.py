"""The tiny-model stage: with `tiny.reward_head` its checkpoint is a reward model the project loads."""

from __future__ import annotations

import pytest

from skywork_rl.rewards.reward_model import RewardModelReward
from skywork_rl.rewards.vlm_reward_model import HEAD_FILE
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.tiny_model import TinyModelStage


def _run(out, *extra: str) -> dict[str, float]:
    argv = ["--tiny.output_dir", str(out), "--tiny.seed", "2", *extra]
    return run_stage(TinyModelStage(parse_stage_config(TinyModelStage, argv)), force=True)


def test_tiny_model_with_reward_head_loads_and_scores_as_a_reward_model(tmp_path):
    out = tmp_path / "rm"
    _run(out, "--tiny.reward_head", "true")
    reward = RewardModelReward(str(out), key="reward_model.name_or_path")  # no allow_random_head
    prompt = [{"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]}]
    scores = reward.score([prompt, prompt], ["The answer is \\boxed{4}.", "The answer is \\boxed{5}."])
    assert all(isinstance(s, float) for s in scores) and scores[0] != scores[1]


def test_tiny_model_without_reward_head_removes_one_left_by_an_earlier_run(tmp_path):
    from transformers import AutoConfig

    out = tmp_path / "m"
    with_head = _run(out, "--tiny.reward_head", "true")
    without = _run(out)
    hidden = AutoConfig.from_pretrained(str(out)).get_text_config().hidden_size
    assert with_head["parameters"] - without["parameters"] == hidden  # Linear(hidden, 1), no bias
    assert not (out / HEAD_FILE).exists()
    with pytest.raises(Exception, match="no reward head"):
        RewardModelReward(str(out)).load()
