"""Completion text: what every text-reading reward scores."""

from __future__ import annotations

from skywork_rl.rewards.completions import completion_text


def test_completion_text_accepts_strings_and_conversational_messages() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "hi"}]) == "hi"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}]}]
    assert completion_text(parts) == "a"
    assert completion_text({"role": "assistant", "content": "one message"}) == "one message"
    assert completion_text([{"role": "user", "content": "not scored"}]) == ""
