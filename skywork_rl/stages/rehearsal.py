"""What a stage knows of a rehearsal (`skywork-rl run --rehearse`, driven by `skywork_rl.runner.rehearsal`).

A stage says how its recipe is rehearsed (`Stage.rehearsal_substitutions`) and refuses with
`RehearsalError` what it has no stand-in for; `run_stage` copies the record the runner hands it
(through ``$SKYWORK_RL_REHEARSAL``) into ``stage.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from skywork_rl.errors import SkyworkError

# The environment variable that hands a stage process its rehearsal record (a JSON file).
REHEARSAL_ENV = "SKYWORK_RL_REHEARSAL"


class RehearsalError(SkyworkError, ValueError):
    """A pipeline cannot be rehearsed as written (a source without a stand-in, a size the rule cannot scale)."""


def get_dotted(tree: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def record_from_env() -> dict[str, Any] | None:
    """The rehearsal record of this stage process, or None outside a rehearsal."""
    path = os.environ.get(REHEARSAL_ENV)
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RehearsalError(f"${REHEARSAL_ENV}={path}: cannot read the rehearsal record ({exc})") from exc
