"""What a tiny family is made of, and the sizes every family shares.

A family is the recipe of one `config.model_type`: the special tokens its real processor looks for,
the turn format of its real chat template (with the image placeholder its processor expands), a
small config of the real model class, and its real processor built around a local tokenizer. The
sizes are the same for all families (a 64-wide, 2-layer LLM, a 32-wide, 1-layer vision tower on
56 px images) so that a few training steps on 2 CPU cores take seconds whichever family a test uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the family files import no transformers until a recipe is built
    from transformers import PretrainedConfig, PreTrainedTokenizerFast


IMAGE_SIZE = 56  # 4x4 patches of 14 px: enough structure to learn from, small enough for CPU
PATCH_SIZE = 14
VOCAB_SIZE = 1024
# Reasoning tags are ordinary added tokens (not special) so decoding keeps them in completions,
# which is what the format reward and the SFT traces need.
REASONING_TOKENS = ("<think>", "</think>")


@dataclass(frozen=True)
class ChatFormat:
    """The turn markers of a family's own chat template.

    `roles` maps a role to the text before and after its content. The assistant's content is
    wrapped in `{% generation %}` together with `eos` (the end-of-turn token the model must learn
    to emit; TRL's `assistant_only_loss` reads that mask). With `system_in_first_user` the system
    text opens the first user turn (Gemma has no system role).
    """

    name: str
    bos: str | None  # the tokenizer's bos token, written at the start unless `bos_in_template` is off
    eos: str
    pad: str
    roles: Mapping[str, tuple[str, str]]
    assistant: tuple[str, str, str]  # before the generation block, its first text, after it
    generation_prompt: str
    specials: tuple[str, ...] = ()
    system_in_first_user: bool = False
    system_separator: str = ""
    images_first: bool = False  # PaliGemma: every image precedes all text (prefix-LM layout)
    bos_in_template: bool = True

    def template(self, image: str) -> str:
        """The Jinja chat template, `image` written for each image part."""
        img = _lit(image)
        render = (
            "{%- macro render(content, images) -%}"
            "{%- if content is string -%}{{- content -}}{%- else -%}"
            "{%- for part in content -%}"
            "{%- if part['type'] == 'image' -%}{%- if images -%}{{- " + img + " -}}{%- endif -%}"
            "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
            "{%- endfor -%}{%- endif -%}"
            "{%- endmacro -%}"
        )
        head = "{{- " + _lit(self.bos if self.bos and self.bos_in_template else "") + " -}}"
        if self.images_first:
            head += (
                "{%- for message in messages -%}{%- if message['content'] is not string -%}"
                "{%- for part in message['content'] -%}{%- if part['type'] == 'image' -%}"
                "{{- " + img + " -}}{%- endif -%}{%- endfor -%}{%- endif -%}{%- endfor -%}"
            )
        inline = "false" if self.images_first else "true"
        before, first, after = self.assistant
        body = "{%- set ns = namespace(system='') -%}{%- for message in messages -%}"
        body += (
            "{%- if message['role'] == 'assistant' -%}{{- " + _lit(before) + " -}}"
            "{% generation %}{{- "
            + _lit(first)
            + " + render(message['content'], false) + "
            + _lit(self.eos)
            + " -}}{% endgeneration %}{{- "
            + _lit(after)
            + " -}}"
        )
        if self.system_in_first_user:
            body += (
                "{%- elif message['role'] == 'system' -%}"
                "{%- set ns.system = render(message['content'], false) + "
                + _lit(self.system_separator)
                + " -%}"
            )
        for role, (start, end) in self.roles.items():
            system = "{{- ns.system -}}{%- set ns.system = '' -%}" if role == "user" else ""
            body += (
                "{%- elif message['role'] == '"
                + role
                + "' -%}{{- "
                + _lit(start)
                + " -}}"
                + system
                + "{{- render(message['content'], "
                + inline
                + ") -}}{{- "
                + _lit(end)
                + " -}}"
            )
        body += "{%- endif -%}{%- endfor -%}"
        tail = "{%- if add_generation_prompt -%}{{- " + _lit(self.generation_prompt) + " -}}{%- endif -%}"
        return render + head + body + tail


def _lit(text: str) -> str:
    """`text` as a Jinja string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


class Tokens:
    """Token ids a config needs, read from the family's tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast) -> None:
        self.tokenizer = tokenizer

    def __getitem__(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise KeyError(f"tiny tokenizer has no token {token!r}")
        return token_id

    def text_config(self, **overrides: Any) -> dict[str, Any]:
        """The shared tiny LLM: 64 wide, 2 layers, 4 heads (2 KV), tied embeddings."""
        tok = self.tokenizer
        config = {
            "vocab_size": len(tok),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id,
            "tie_word_embeddings": True,
        }
        config.update(overrides)
        return config


# The shared tiny vision tower (ViT-style configs); families rename keys their config spells differently.
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}


@dataclass(frozen=True)
class TinyFamily:
    """Everything `make_tiny_model` needs to write a checkpoint of one `model_type`."""

    arch: str  # the `config.model_type` (and `make-tiny-model --arch` name)
    chat: ChatFormat
    image_placeholder: str  # what the chat template writes for an image (the processor expands it)
    image_tokens: tuple[str, ...]  # special tokens of the family's processor
    named_tokens: Mapping[str, str]  # tokenizer attributes the processor reads (`tokenizer.image_token`)
    config: Callable[[Tokens], PretrainedConfig]
    processor: Callable[[PreTrainedTokenizerFast, str], Any]  # (tokenizer, chat template) -> processor
    description: str = ""
    # Runs on the freshly built model: gives weights that transformers initialises to a constant
    # (a pretrained checkpoint never has them so) the random values a tiny stand-in needs.
    finish: Callable[[Any], None] | None = None

    @property
    def chat_template(self) -> str:
        return self.chat.template(self.image_placeholder)


@dataclass(frozen=True)
class PartPatterns:
    """Regexes (matched at the start of a parameter name) for each part of one architecture."""

    vision: tuple[str, ...]
    connector: tuple[str, ...]
    llm: tuple[str, ...]

    def for_part(self, part: str) -> tuple[str, ...]:
        return getattr(self, part)


# HF-native VLMs in transformers >= 5 share `model.{vision_tower,multi_modal_projector,language_model}`
# (InternVL, LLaVA, LLaVA-OneVision + its `image_newline`, Gemma 3 + its soft-embedding norm,
# Mistral 3 whose projector holds the patch merger, PaliGemma): the families' files share these.
HF_LLAVA_LIKE = PartPatterns(
    vision=(r"model\.vision_tower\.",),
    connector=(r"model\.multi_modal_projector\.", r"model\.image_newline$"),
    llm=(r"model\.language_model\.", r"lm_head\."),
)


@dataclass(frozen=True)
class Limit:
    """Why a family lacks a capability, and what the user can do instead."""

    reason: str
    fix: str


@dataclass(frozen=True)
class Family:
    """All the project knows of one `config.model_type`, declared in its family's file
    (`skywork_rl/families/<family>.py`) and registered by one line in `skywork_rl/families/registry.py`.

    `parts` names its vision / connector / LLM parameters; `limits` what its processor cannot do for
    a stage (capability -> `Limit`, see `skywork_rl.families.capabilities.CAPABILITIES`); `tiny` the
    recipe of its tiny checkpoint (None for families with no transformers-native class to build one
    from); `prefix_lm` whether its LLM attends bidirectionally over a prefix marked by
    ``token_type_ids == 0`` (`skywork_rl.trainers.family_inputs` handles it); `vision_gated_mlp` whether
    its vision blocks use a gated (SwiGLU) MLP, for preflight's size estimate (`skywork_rl.preflight.shapes`,
    which looks the family up by the vision config's `model_type`).
    """

    model_type: str
    parts: PartPatterns
    limits: Mapping[str, Limit] = field(default_factory=dict)
    tiny: TinyFamily | None = None
    prefix_lm: bool = False
    vision_gated_mlp: bool = False

    def __post_init__(self) -> None:
        if self.tiny is not None and self.tiny.arch != self.model_type:
            raise ValueError(
                f"Family {self.model_type!r}: its tiny recipe builds {self.tiny.arch!r}; give the recipe "
                f"arch={self.model_type!r}"
            )
