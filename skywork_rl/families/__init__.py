"""Model families: what the project knows of each VLM family, in one package.

`parts` names each architecture's vision / connector / LLM parameters (`PART_REGISTRY`),
`capabilities` what a family's processor cannot do, and one file per family (`gemma`, `idefics`,
`llava`, `mistral`, `qwen_vl`) its tiny checkpoint recipe, registered in `registry.FAMILIES`.
This file imports nothing, so `skywork_rl.families.capabilities` stays light (no transformers).
"""
