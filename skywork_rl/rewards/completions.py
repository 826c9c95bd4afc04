"""The text of a TRL completion, whatever its form: every reward that reads text starts here.

TRL hands reward functions a plain string for standard datasets and a list of assistant messages
for conversational ones (content as a string or as parts). Accuracy, format and reward-model
rewards all score the same text, so they read it through one function.
"""

from __future__ import annotations

from typing import Any


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or conversational messages (string or parts content).

    For messages, the assistant turns' text is joined (TRL passes one assistant message).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    texts: list[str] = []
    for message in completion or []:
        if not isinstance(message, dict) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
            )
    return "\n".join(texts)
