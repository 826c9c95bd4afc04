"""OpenGVLab InternVL-Chat / Skywork-R1V remote code: the papers' checkpoints.

Their part names, for when they are loaded outside the training stages (e.g. `AutoModel` for
inspection); the training stages need an image-text-to-text class. No tiny recipe: transformers has
no native class to build one from.
"""

from __future__ import annotations

from skywork_rl.families.base import Family, PartPatterns

INTERNVL_REMOTE_PARTS = PartPatterns(
    vision=(r"vision_model\.",),
    connector=(r"mlp1\.",),
    llm=(r"language_model\.",),
)
INTERNVL_CHAT_SPEC = Family("internvl_chat", parts=INTERNVL_REMOTE_PARTS)
SKYWORK_CHAT_SPEC = Family("skywork_chat", parts=INTERNVL_REMOTE_PARTS)
