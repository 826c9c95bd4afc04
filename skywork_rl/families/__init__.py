"""Model families: what the project knows of each VLM family, in one package.

One file per family (`gemma`, `idefics`, `internvl_chat`, `llava`, `mistral`, `qwen_vl`) declares a
`Family` per `config.model_type` (part patterns, capability limits, tiny checkpoint recipe, prefix-LM
flag), each registered by one line in `registry` (`register_family`). `parts` resolves a model's
vision / connector / LLM parameters from them (`PART_REGISTRY`), `capabilities` checks what a family's
processor cannot do (`FAMILY_LIMITS`). This file imports nothing, and the family files import no
transformers until a tiny recipe is built, so `skywork_rl.families.capabilities` stays light.
"""
