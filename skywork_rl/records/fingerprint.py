"""What a stage's result depends on, as hashes the pipeline compares before it skips a stage.

A stage's output is trusted again only when it was made from the same resolved config and the same
inputs. `run_stage` records both in ``stage.json`` under ``"fingerprint"``:

- ``config``: sha256 of the stage's resolved config (defaults < recipe < command line, as parsed)
  without the keys in `UNHASHED_LEAVES` and `SECRET_LEAVES` (both by exact name), the stage's own output folder, its input model/data keys
  (their content is fingerprinted under ``inputs``) and its force overrides (``--force`` changes how
  a run starts, not what it makes).
- ``inputs``: one fingerprint per input (``model``, ``data``), see `input_fingerprint`.
- ``processes``: how many processes ran it (``WORLD_SIZE``); the global batch depends on it.
- ``output`` (written at completion only): an id of this finished run, hashed from the two above,
  the end time and a random nonce. A later stage that reads this folder records ``stage:<output>``
  as its input, so re-making a stage (even with the same config) invalidates every stage after it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from skywork_rl.errors import SkyworkError

COMPLETE_MARKER = ".stage_complete"
STAGE_JSON = "stage.json"

# Config keys (by name, in any group) that cannot change what a stage produces. Kept short on
# purpose: a key that might change results stays hashed (save/logging steps change the checkpoints
# and the logged losses in stage.json, so they stay).
UNHASHED_LEAVES = frozenset(
    {
        "resume_from_checkpoint",  # how a run starts; resuming is exact
        "report_to",  # where metrics are sent
        "run_name",
        "project",
        "trackio_space_id",
        "trackio_bucket_id",
        "trackio_static_space_id",
        "logging_dir",
        "disable_tqdm",  # console only
        "log_level",
        "log_level_replica",
        "log_on_each_node",
        "local_rank",  # set by launchers, not by recipes
    }
)
# Secrets, by exact key name (in any group): never hashed, never written to stage.json. Only these:
# other keys ending in `_token` (TRL's eos_token, pad_token) change what a stage makes and are hashed.
SECRET_LEAVES = frozenset(
    {
        "hub_token",  # transformers TrainingArguments (every TRL config)
        "push_to_hub_token",  # its older name
        "token",  # huggingface_hub's name for the same secret
        "api_key",  # an OpenAI-compatible judge or reward server
    }
)

# Hub ids are `name` or `org/name`; these suffixes mark a data file (see skywork_rl.data.loading).
_FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow", ".csv")


class MissingInputError(SkyworkError, FileNotFoundError):
    """A stage's input model or dataset names a local path that does not exist."""


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _drop(tree: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree.get(part)
        if not isinstance(tree, dict):
            return
    tree.pop(last, None)


def _drop_leaves(tree: Any, leaves: frozenset[str]) -> Any:
    if not isinstance(tree, dict):
        return tree
    return {k: _drop_leaves(v, leaves) for k, v in tree.items() if k not in leaves and k not in SECRET_LEAVES}


def force_overrides_for(stage_class: type) -> dict[str, Any]:
    """Config overrides that make a forced re-run redo the work rather than find it done."""
    if stage_class.force_overrides:
        return stage_class.force_overrides
    if stage_class.output_dir_key.startswith("training."):
        # `resume_from_checkpoint: auto` would resume from the final checkpoint and train 0 steps.
        return {"training": {"resume_from_checkpoint": None}}
    return {}


def hashed_config(stage_class: type, resolved: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config the config hash covers (see the module docstring)."""
    tree = _drop_leaves(copy.deepcopy(resolved), UNHASHED_LEAVES)
    for key in (stage_class.output_dir_key, stage_class.input_model_key, stage_class.input_data_key):
        if key:
            _drop(tree, key)
    for key in _flatten(force_overrides_for(stage_class)):
        _drop(tree, key)
    return tree


def redacted(resolved: dict[str, Any]) -> dict[str, Any]:
    """`resolved` without secrets, for ``stage.json``."""
    return _drop_leaves(resolved, frozenset())


def config_hash(stage_class: type, resolved: dict[str, Any]) -> str:
    """Hash of the stage class and its resolved config (excluded keys removed), by value: a number is
    hashed the same whether it was parsed as ``500`` or ``500.0`` (see `_by_value`)."""
    stage_path = f"{stage_class.__module__}:{stage_class.__qualname__}"
    return _hash({"stage": stage_path, "config": _by_value(hashed_config(stage_class, resolved))})


def _by_value(tree: Any) -> Any:
    """`tree` with each whole-number float as an int, so the hash follows value equality (what
    `changed_keys` shows). jsonargparse gives a float-typed field's *default* as written in its
    dataclass (TrainingArguments' ``eval_delay: float = 0``) when it parses a recipe file, but as a
    float when it parses the same recipe as data (the pipeline's in-memory plan): the two parses of one
    recipe must hash alike, or every training stage re-runs on every ``run``."""
    if isinstance(tree, dict):
        return {k: _by_value(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_by_value(v) for v in tree]
    if isinstance(tree, float) and tree.is_integer():
        return int(tree)
    return tree


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ, as ``key: old -> new`` (for `--dry-run` reasons)."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def looks_like_local_path(location: str) -> bool:
    """Whether `location` can only mean a local path (not a hub id, which is `name` or `org/name`)."""
    if location.startswith(("/", "./", "../", "~")) or location in (".", ".."):
        return True
    if location.endswith(_FILE_SUFFIXES):
        return True
    parts = location.split("/")
    # `ckpt/sft` is a hub id in form, but with a local `ckpt/` folder it was meant as a path.
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())


def check_input_exists(location: str | None, key: str) -> None:
    """Raise `MissingInputError` when `location` names a local path that is not there."""
    if not location or Path(location).exists() or not looks_like_local_path(location):
        return
    raise MissingInputError(
        f"{key}: no such path {location!r} (relative paths are resolved from the current directory, "
        f"{os.getcwd()}); if a pipeline stage makes it, check that stage finished (its folder holds "
        f"{COMPLETE_MARKER})"
    )


def read_record(output_dir: str | Path) -> dict[str, Any] | None:
    """The ``stage.json`` of a stage folder, or None when there is none (or it is unreadable)."""
    path = Path(output_dir) / STAGE_JSON
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def input_fingerprint(location: str | None) -> str | None:
    """A cheap fingerprint of a model or dataset location.

    - a folder made by a finished stage: ``stage:<its output id>`` (a re-made input is a new input);
    - another local folder or file: ``files:<hash>`` of every file's relative path, size and
      modification time (contents are not read, so a copy with new times counts as changed);
    - anything else is a hub id: ``hub:<id>``, by name only (a hub repo that changes upstream is not
      noticed; pin its revision in the recipe).
    """
    if not location:
        return None
    path = Path(location)
    if path.is_dir() and (path / COMPLETE_MARKER).exists():
        output = ((read_record(path) or {}).get("fingerprint") or {}).get("output")
        if output:
            return f"stage:{output}"
    if path.exists():
        return f"files:{_hash(_file_listing(path))}"
    return f"hub:{location}"


def _file_listing(path: Path) -> list[tuple[str, int, int]]:
    if path.is_file():
        st = path.stat()
        return [(path.name, st.st_size, st.st_mtime_ns)]
    listing = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            try:
                st = full.stat()
            except OSError:  # removed while we walked
                continue
            listing.append((str(full.relative_to(path)), st.st_size, st.st_mtime_ns))
    return listing


def stage_inputs(model: str | None, data: str | None) -> dict[str, str | None]:
    """The ``inputs`` entry of a fingerprint: one per input the stage has."""
    return {"model": input_fingerprint(model), "data": input_fingerprint(data)}


def output_id(fingerprint: dict[str, Any], ended_at: str) -> str:
    """An id for one finished run of a stage (see the module docstring)."""
    return _hash({**fingerprint, "ended_at": ended_at, "nonce": uuid.uuid4().hex})
