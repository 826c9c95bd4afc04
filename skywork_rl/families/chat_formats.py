"""The turn formats of the families' own chat templates (role markers, end-of-turn token).

Each tiny checkpoint speaks its family's format, not one shared ChatML, so that the stages meet
what the family's real checkpoints give them: Gemma's `<start_of_turn>model`, Mistral's `[INST]`,
Idefics3/SmolVLM's `User:` / `<end_of_utterance>`, PaliGemma's image-first prefix.
"""

from __future__ import annotations

from skywork_rl.families.base import ChatFormat

# Qwen2/2.5/3-VL, InternVL3, LLaVA-OneVision (Qwen2 LLMs) and our tiny LLaVA.
CHATML = ChatFormat(
    name="chatml",
    bos=None,
    eos="<|im_end|>",
    pad="<|endoftext|>",
    specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    roles={
        "system": ("<|im_start|>system\n", "<|im_end|>\n"),
        "user": ("<|im_start|>user\n", "<|im_end|>\n"),
    },
    assistant=("<|im_start|>assistant\n", "", "\n"),
    generation_prompt="<|im_start|>assistant\n",
)


def _idefics(name: str, bos: str, pad: str) -> ChatFormat:
    # HuggingFaceM4/Idefics3-8B-Llama3 and SmolVLM-Instruct: "User:<image>Q<end_of_utterance>\nAssistant: A".
    return ChatFormat(
        name=name,
        bos=bos,
        eos="<end_of_utterance>",
        pad=pad,
        specials=(bos, pad, "<end_of_utterance>"),
        roles={"system": ("System: ", "<end_of_utterance>\n"), "user": ("User:", "<end_of_utterance>\n")},
        assistant=("Assistant:", " ", "\n"),
        generation_prompt="Assistant:",
    )


IDEFICS3 = _idefics("idefics3", "<|begin_of_text|>", "<|end_of_text|>")
SMOLVLM = _idefics("smolvlm", "<|im_start|>", "<|endoftext|>")

# google/gemma-3-*-it: no system role (its text opens the first user turn), the assistant is `model`.
GEMMA = ChatFormat(
    name="gemma",
    bos="<bos>",
    eos="<end_of_turn>",
    pad="<pad>",
    specials=("<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>"),
    roles={"user": ("<start_of_turn>user\n", "<end_of_turn>\n")},
    assistant=("<start_of_turn>model\n", "", "\n"),
    generation_prompt="<start_of_turn>model\n",
    system_in_first_user=True,
    system_separator="\n\n",
)

# mistralai/Mistral-Small-3.1-24B-Instruct-2503 (the tekken template's shape).
MISTRAL = ChatFormat(
    name="mistral",
    bos="<s>",
    eos="</s>",
    pad="<pad>",
    specials=("<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"),
    roles={"system": ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"), "user": ("[INST]", "[/INST]")},
    assistant=("", "", ""),
    generation_prompt="",
)

# PaliGemma has no chat template: `<image>`s, then the prefix (the processor inserts `<bos>` after the
# last image and a "\n" at the end), then the suffix the model generates. This template lays a
# conversation out that way: images first, the system and user texts as the prefix, the answer as
# the suffix right after it. `<bos>` and the separating "\n" are left to the processor, which inserts
# them itself; the rendered prompt is the processor's `text`, the rendered answer the suffix that
# `skywork_rl.trainers.family_inputs` tokenizes as such, so SFT trains the layout generation produces.
PALIGEMMA = ChatFormat(
    name="paligemma",
    bos="<bos>",
    bos_in_template=False,
    eos="<eos>",
    pad="<pad>",
    specials=("<bos>", "<eos>", "<pad>"),
    roles={"system": ("", "\n"), "user": ("", "")},
    assistant=("", "", ""),
    generation_prompt="",
    images_first=True,
)
