"""The tiny models a rehearsal stands in for a paper pipeline's real ones (`skywork_rl.runner.rehearsal`).

Each real model id maps to the architecture class it has (`STANDIN_ARCH`; a local checkpoint's
`config.json` says it itself), and its role in the recipe picks the kind of stand-in:

* ``policy`` (a policy, a distillation teacher, a pair-rollout model): a tiny VLM of that class
  whose weights follow a *script*: ``<think> ... </think> \\boxed{X}`` with X drawn uniformly from
  `ANSWERS`, whatever the prompt. A random tiny model never writes a verified, well-formed answer,
  so every selection rule of the recipe (verified chains only, a pass-rate band, a score margin)
  would drop every row; the scripted one is right on a known share of the stand-in rows (those
  whose gold answer is in `ANSWERS`: 1 in len(ANSWERS) of its samples), so each rule keeps some
  rows and drops others, as on the real data. The script lives in the weights alone (decoder
  layers' output projections zeroed, so the last hidden state is the current token's embedding;
  the untied LM head maps each script token to the next): the real model class loads, generates,
  trains and saves it through the real code.
* ``verifier``: a tiny text-only causal LM (a random judge: its verdicts are unparsable, the rule
  checker decides, as on the tiny pipeline).
* ``reward_model``: a tiny VLM of the class with a scalar reward head (`vlm_reward_model`), scaled
  by `REWARD_SCALE` so that its scores spread over the paper's margin scale (R1V2 pairs at a
  Skywork-VL Reward margin of 15).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from skywork_rl.errors import SkyworkError
from skywork_rl.stages.tiny_model import write_reward_head

# Real model id -> `config.model_type` of the tiny stand-in: the transformers class of the same architecture.
STANDIN_ARCH: dict[str, str] = {
    "OpenGVLab/InternVL3-38B-hf": "internvl",
    "OpenGVLab/InternVL3-8B-hf": "internvl",
    # InternVL-Chat remote code (InternViT-6B + MLP connector + QwQ-32B): InternVL's architecture
    "Skywork/Skywork-R1V2-38B": "internvl",
    "Skywork/Skywork-R1V3-38B": "internvl",
    "Qwen/Qwen2.5-7B-Instruct": "qwen2",
    "Qwen/QwQ-32B": "qwen2",
    # Qwen2.5-VL-7B backbone + value head (arXiv 2505.07263)
    "Skywork/Skywork-VL-Reward-7B": "qwen2_5_vl",
}
TEXT_ARCHS = ("qwen2",)
ROLES = ("policy", "verifier", "reward_model")
# The scripted answers: option letters (ScienceQA, MMK12's and MathV360K's choice items, MMMU and
# MathVista's); a stand-in row with a free-form gold is never solved, and dropped where a rule drops those.
ANSWERS = ("A", "B", "C", "D")
REWARD_SCALE = 2000.0  # reward-head weight scale: different rollouts score ~20-70 apart (measured)
_LOGIT = 20.0  # the script's next token beats every other by e^20


class StandinModelError(SkyworkError, ValueError):
    """A real model a rehearsal has no tiny stand-in for."""


def standin_arch(name: str) -> str:
    """The tiny stand-in's model_type for real model `name` (table, else its local config.json)."""
    if name in STANDIN_ARCH:
        return STANDIN_ARCH[name]
    config = Path(name) / "config.json"
    if config.is_file():
        return str(json.loads(config.read_text()).get("model_type", ""))
    raise StandinModelError(
        f"rehearsal: no tiny stand-in for model {name!r}: add its architecture (config.model_type) to "
        "skywork_rl/runner/rehearsal_models.py STANDIN_ARCH"
    )


def build_standin_model(name: str, role: str, base: Path, seed: int = 0) -> Path:
    """Write (once) the tiny stand-in of `name` in `role` under `base` and return its folder."""
    if role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {ROLES}")
    arch = standin_arch(name)
    if role == "verifier" or arch in TEXT_ARCHS:
        arch = arch if arch in TEXT_ARCHS else "qwen2"
    out = base / f"{re.sub(r'[^A-Za-z0-9._-]+', '--', name.strip('/'))}--{role}"
    stamp = out / "standin.json"
    record = {
        "real": name,
        "role": role,
        "arch": arch,
        "seed": seed,
        "answers": list(ANSWERS),
        "reasonings": list(_REASONINGS),
        "reward_scale": REWARD_SCALE if role == "reward_model" else None,
    }
    if stamp.is_file() and json.loads(stamp.read_text()) == record:
        return out
    if arch in TEXT_ARCHS:
        _text_model(out, seed, scripted=role == "policy")
    elif role == "reward_model":
        _reward_model(arch, out, seed)
    else:
        _scripted_vlm(arch, out, seed)
    stamp.write_text(json.dumps(record))
    return out


def _reward_model(arch: str, out: Path, seed: int) -> None:
    from safetensors.torch import load_file, save_file

    from skywork_rl.miniature.tiny import make_tiny_model  # defers torch, transformers
    from skywork_rl.rewards.vlm_reward_model import HEAD_FILE  # defers torch

    make_tiny_model(arch, out, seed=seed)
    write_reward_head(out, seed)
    head = load_file(str(out / HEAD_FILE))
    save_file({k: (v * REWARD_SCALE).contiguous() for k, v in head.items()}, str(out / HEAD_FILE))


def _text_model(out: Path, seed: int, scripted: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from skywork_rl.families.base import Tokens  # defers transformers
    from skywork_rl.miniature.tiny import tiny_processor  # defers torch, transformers

    torch.manual_seed(seed)
    tokenizer = tiny_processor("internvl").tokenizer  # ChatML, the Qwen2.5 instruct turn format
    config = Qwen2Config(**Tokens(tokenizer).text_config(model_type="qwen2"))
    config.tie_word_embeddings = not scripted
    model = AutoModelForCausalLM.from_config(config)
    if scripted:
        follow_script(model, tokenizer)
    _generation_ids(model, tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _scripted_vlm(arch: str, out: Path, seed: int) -> None:
    import torch
    from transformers import AutoModelForImageTextToText

    from skywork_rl.families.base import Tokens  # defers transformers
    from skywork_rl.miniature.tiny import family, tiny_processor  # defers torch, transformers

    torch.manual_seed(seed)
    recipe = family(arch)
    processor = tiny_processor(arch)
    config = recipe.config(Tokens(processor.tokenizer))
    config.tie_word_embeddings = False
    config.get_text_config().tie_word_embeddings = False
    model = AutoModelForImageTextToText.from_config(config)
    if recipe.finish is not None:
        recipe.finish(model)
    follow_script(model, processor.tokenizer)
    _generation_ids(model, processor.tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


def _generation_ids(model: Any, tokenizer: Any) -> None:
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id


def script_texts(reasoning: str) -> list[str]:
    """The completions the scripted model writes, one per answer of `ANSWERS`."""
    return [f"<think> {reasoning} </think> \\boxed{{{answer}}}" for answer in ANSWERS]


# The reasoning says a critical word of R1V3's checkpoint selection (eval/select: "wait", "hmm", ...), as a
# reasoning model's traces do, so the select stage has critical tokens to rank its candidates by (the first
# whose tokens do not repeat: the tiny tokenizer writes " wait " as " ", w, a, it, " ", so "hmm" is used).
_REASONINGS = ("wait", "hmm", "wait check", "actually")


def script_transitions(tokenizer: Any) -> dict[int, set[int]]:
    """Token id -> the ids the script may write next, from the generation prompt's last token to EOS.

    Deterministic except where the answers branch; a reasoning text whose tokens would repeat (and so
    make a token's successor ambiguous) is skipped for the next candidate."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "q"}]}],
        tokenize=True,
        add_generation_prompt=True,
    )
    ids = prompt["input_ids"] if isinstance(prompt, dict) or hasattr(prompt, "keys") else prompt
    start = int(ids[-1])
    for reasoning in _REASONINGS:
        sequences = [
            [start, *tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
            for text in script_texts(reasoning)
        ]
        transitions: dict[int, set[int]] = {}
        for seq in sequences:
            for a, b in zip(seq, seq[1:], strict=False):
                transitions.setdefault(a, set()).add(b)
        branching = [t for t, nxt in transitions.items() if len(nxt) > 1]
        if len(branching) == 1 and _walks_match(transitions, sequences):
            return transitions
    raise StandinModelError("rehearsal: the tiny tokenizer splits every script so that tokens repeat")


def _walks_match(transitions: dict[int, set[int]], sequences: list[list[int]]) -> bool:
    """No scripted sequence repeats a token (a repeat would loop or make its successor ambiguous)."""
    return all(len(set(seq)) == len(seq) for seq in sequences)


def follow_script(model: Any, tokenizer: Any) -> None:
    """Set `model`'s LLM weights so that it writes one of `script_texts` (module doc)."""
    import torch

    transitions = script_transitions(tokenizer)
    lm = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    text_model = getattr(lm, "language_model", lm)
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    if embed.data_ptr() == head.data_ptr():
        raise StandinModelError("rehearsal: the scripted stand-in needs an untied LM head")
    hidden = embed.shape[1]
    tokens = sorted({t for t, nxt in transitions.items()} | {n for nxt in transitions.values() for n in nxt})
    if len(tokens) > hidden:
        raise StandinModelError(f"rehearsal: a script of {len(tokens)} tokens needs more than {hidden} dims")
    with torch.no_grad():
        for layer in text_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        text_model.norm.weight.fill_(1.0)
        head.zero_()
        basis = torch.eye(hidden)
        for k, token in enumerate(tokens):
            embed[token] = basis[k]
        scale = _LOGIT / hidden**0.5  # the final RMSNorm turns a unit embedding into sqrt(hidden) x itself
        for token, following in transitions.items():
            for nxt in following:
                head[nxt] += scale * basis[tokens.index(token)]
