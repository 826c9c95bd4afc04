"""Rewards for GRPO in TRL's reward-function convention, plus a plain scoring API for offline use.

Importing this package loads neither torch models nor sympy: the accuracy check runs in worker
processes, and the reward model loads on first call.
"""

from skywork_rl.rewards.accuracy import AccuracyReward, accuracy_reward, score_accuracy
from skywork_rl.rewards.config import RewardArguments
from skywork_rl.rewards.extract import extract_final_answer, parse_gold
from skywork_rl.rewards.format import FormatReward, FormatSpec, format_reward, soft_format_reward
from skywork_rl.rewards.registry import available_rewards, build_reward_funcs, get_reward, register_reward

__all__ = [
    "AccuracyReward",
    "FormatReward",
    "FormatSpec",
    "RewardArguments",
    "accuracy_reward",
    "available_rewards",
    "build_reward_funcs",
    "extract_final_answer",
    "format_reward",
    "get_reward",
    "parse_gold",
    "register_reward",
    "score_accuracy",
    "soft_format_reward",
]
