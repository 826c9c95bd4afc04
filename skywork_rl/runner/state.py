"""Which stages of a pipeline run again, and why: the fingerprints in each output's ``stage.json``.

Per stage, in pipeline order:

- **skip** when its folder is finished (``.stage_complete``) and both its config fingerprint and its
  inputs' fingerprints equal what this run would use;
- **run** from scratch (the stage gets ``--force``) when it never ran (``new``), its config changed,
  it will run on another number of processes, an input changed, or an earlier stage of this run
  re-makes one of its inputs (every stage after a re-made one is invalidated that way, through the
  ``stage:<output id>`` fingerprints), or a file it reads besides its inputs (its class's
  ``input_file_keys``, e.g. dedup's benchmark questions);
- **resume** (no ``--force``: training continues from its last complete checkpoint, data stages from
  their saved chunks) when it started with the same fingerprints but did not finish.

Stages left out by ``--from``/``--only`` are not looked at; a selected stage reads their outputs as
they are on disk, which must be finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skywork_rl.records import fingerprint
from skywork_rl.runner.plan import PlannedStage, input_files
from skywork_rl.stages.base import RecipeError, is_complete


@dataclass
class Decision:
    """What the runner does with one stage: action (skip, run, resume, not selected) and why."""

    action: str
    reason: str
    fresh: bool = False  # run with --force: discard what a previous run left


def select(stages: list[PlannedStage], start: str | None, only: list[str] | None) -> set[str]:
    """The ids `--from ID` / `--only ID ...` pick (all stages by default)."""
    ids = [s.id for s in stages]
    if start is not None and only:
        raise RecipeError("give --from ID or --only ID, not both")
    for sid in [start, *(only or [])]:
        if sid is not None and sid not in ids:
            raise RecipeError(f"no stage {sid!r} in this pipeline; its stages: {ids}")
    if only:
        return set(only)
    if start is not None:
        return set(ids[ids.index(start) :])
    return set(ids)


def _norm(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def _inside(path: Path, folder: str) -> bool:
    return str(path) == folder or str(path).startswith(folder + os.sep)


def decide(stages: list[PlannedStage], selected: set[str], force: bool = False) -> list[Decision]:
    """One decision per stage (see the module docstring)."""
    remade: dict[str, str] = {}  # output folder -> id of the stage that re-makes it in this run
    unselected: dict[str, PlannedStage] = {}
    decisions = []
    for stage in stages:
        if stage.id not in selected:
            unselected[_norm(stage.output_dir)] = stage
            decisions.append(Decision("not selected", "--from/--only"))
            continue
        _check_unselected_inputs(stage, unselected)
        decision = _decide_one(stage, remade, force)
        if decision.action in ("run", "resume"):
            remade[_norm(stage.output_dir)] = stage.id
        decisions.append(decision)
    return decisions


def _inputs(stage: PlannedStage) -> dict[str, str | None]:
    return {"model": stage.input_model, "data": stage.input_data}


def _check_unselected_inputs(stage: PlannedStage, unselected: dict[str, PlannedStage]) -> None:
    for name, location in _inputs(stage).items():
        source = unselected.get(_norm(location)) if location else None
        if source is not None and not is_complete(source.output_dir):
            raise RecipeError(
                f"stage {stage.id} reads its {name} from stage {source.id} ({source.output_dir}), which is "
                "not selected and not finished; include it (an earlier --from, or --only both)"
            )


def _decide_one(stage: PlannedStage, remade: dict[str, str], force: bool) -> Decision:
    if force:
        return Decision("run", "forced (--force)", fresh=True)
    record = fingerprint.read_record(stage.output_dir)
    if record is None:
        return Decision("run", "new")
    recorded = record.get("fingerprint") or {}
    if not recorded.get("config"):
        return Decision("run", "no fingerprint in its stage.json (made before fingerprints)", fresh=True)
    config = fingerprint.config_hash(stage.stage_class, stage.resolved)
    if recorded["config"] != config:
        return Decision("run", f"config changed ({_config_diff(stage, record)})", fresh=True)
    processes, was = stage.expected_processes(), recorded.get("processes")
    if processes is not None and was is not None and processes != was:
        return Decision("run", f"processes changed ({was} -> {processes})", fresh=True)
    for name, location in _inputs(stage).items():
        if location and _norm(location) in remade:
            return Decision(
                "run", f"input changed ({name}: stage {remade[_norm(location)]} runs first)", True
            )
    for key, path in input_files(stage):  # e.g. dedup's benchmark files, made by a benchmark-data stage
        maker = next((sid for folder, sid in remade.items() if _inside(path, folder)), None)
        if maker is not None:
            return Decision("run", f"input changed ({key}: stage {maker} runs first)", True)
    expected = fingerprint.stage_inputs(stage.input_model, stage.input_data)
    if recorded.get("inputs") != expected:
        changed = [k for k in expected if (recorded.get("inputs") or {}).get(k) != expected[k]]
        where = ", ".join(f"{k}: {_inputs(stage)[k]}" for k in changed)
        return Decision("run", f"input changed ({where})", fresh=True)
    if is_complete(stage.output_dir):
        return Decision("skip", "unchanged")
    status = {"running": "interrupted", "failed": "failed"}.get(record.get("status"), "no completion marker")
    return Decision("resume", f"incomplete ({status})")


def _config_diff(stage: PlannedStage, record: dict[str, Any]) -> str:
    old = record.get("resolved_config")
    if not isinstance(old, dict) or record.get("stage_class") != _class_path(stage):
        return "stage class changed" if isinstance(old, dict) else "previous config not recorded"
    changed = fingerprint.changed_keys(
        fingerprint.hashed_config(stage.stage_class, old),
        fingerprint.hashed_config(stage.stage_class, stage.resolved),
    )
    shown = "; ".join(changed[:3]) + (f"; {len(changed) - 3} more" if len(changed) > 3 else "")
    # Same class, no value changed: the recorded hash was made by another version's hashing rules.
    return shown or "its recorded config hash was made by another version of skywork-rl"


def _class_path(stage: PlannedStage) -> str:
    return f"{stage.stage_class.__module__}:{stage.stage_class.__qualname__}"
