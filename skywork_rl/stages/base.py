"""What a stage is, how its recipe is parsed, and the provenance every stage leaves behind.

A stage is a config dataclass (its fields are recipe groups: ``model``, ``data``, ``training`` ...,
where ``training`` subclasses a TRL config so every TRL knob still works) plus ``run()``. The
runner here parses YAML + CLI overrides with jsonargparse (defaults < recipe < command line, in any
order, as TRL's parser does), runs the stage, and writes into the output folder ``stage.json``
(stage, resolved config, its fingerprint, input model, start/end, final metrics) and, last and
atomically, the completion marker. A folder holding that marker is finished: `run_stage` refuses to
run into it again unless forced (`--force`: redo from scratch).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from skywork_rl.data.loading import DATASETS_CACHE, dataset_cache_under
from skywork_rl.errors import SkyworkError, storage_errno, storage_error
from skywork_rl.records import fingerprint
from skywork_rl.records.atomic import write_atomic  # also imported from here by the pipeline
from skywork_rl.records.fingerprint import COMPLETE_MARKER, STAGE_JSON, force_overrides_for
from skywork_rl.stages.launch import launch_record
from skywork_rl.stages.parsing import RecipeError, build_parser, load_stage, parse_stage_config
from skywork_rl.stages.rehearsal import record_from_env

logger = logging.getLogger("skywork_rl")


class StageRefused(SkyworkError, RuntimeError):
    """A stage declined to start and changed nothing (e.g. a finished output it may not overwrite).

    `run_stage` then puts back the previous `stage.json` and completion marker, so a refused re-run
    never turns a finished stage into an unfinished one.
    """


class Stage(ABC):
    """Base of every pipeline stage.

    Subclasses set `name`, `config_class`, and the dotted keys the pipeline uses to chain stages:
    where the output goes (`output_dir_key`), which model it starts from (`input_model_key`, or
    None for stages that start from nothing) and which dataset it reads (`input_data_key`).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    produces: ClassVar[str] = "model"  # "model" or "data": what the next stage may take from this one
    output_dir_key: ClassVar[str] = "training.output_dir"
    input_model_key: ClassVar[str | None] = "model.name_or_path"
    input_data_key: ClassVar[str | None] = "data.train"
    distributed: ClassVar[bool] = True  # run under `accelerate launch` in a pipeline
    # What `--force` adds to this stage's config so that it really redoes its work: training stages
    # start fresh instead of resuming their last checkpoint (see `force_overrides_for`). Overrides that
    # only set flags to true (data stages: `output.overwrite`) are permissions a recipe may also give.
    force_overrides: ClassVar[dict[str, Any]] = {}
    # Metric names (as stored in `stage.json` "metrics") the pipeline's closing report shows for this
    # stage, in this order; each stage declares its own so the runner knows no stage by name.
    report_keys: ClassVar[tuple[str, ...]] = ()
    # Config keys (dotted) naming local files or folders the stage reads besides its chained input (a
    # path or a list of paths), each with what makes such a file. A pipeline refuses, before anything
    # runs, a path that neither exists nor lies in an earlier stage's output (`check_made_inputs`).
    input_file_keys: ClassVar[dict[str, str]] = {}
    # Config keys (dotted) a recipe may not set for this stage, each with where its value goes instead:
    # one home per value (e.g. GRPO's `training.reward_weights`, which the stage fills from `rewards:`).
    # Parsing refuses a recipe or command line that sets one (`parsing.parse_namespace`).
    moved_keys: ClassVar[dict[str, str]] = {}
    # The parsed recipe values (defaults < recipe < command line) when the stage was built by
    # `load_stage`; `run_stage` fingerprints them (else the config dataclass itself).
    resolved_config: dict[str, Any] | None = None
    # What this process's run of the stage did beyond its metrics (a training stage: the checkpoint it
    # resumed from, its steps, time and tokens); `run_stage` records it as this part in `stage.json`.
    run_part: dict[str, Any] | None = None

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def output_dir(self) -> Path:
        return Path(get_dotted(self.config, self.output_dir_key))

    @property
    def input_model(self) -> str | None:
        return get_dotted(self.config, self.input_model_key) if self.input_model_key else None

    @property
    def input_data(self) -> str | None:
        return get_dotted(self.config, self.input_data_key) if self.input_data_key else None

    @classmethod
    def rehearsal_substitutions(cls, stage_id: str, config: dict[str, Any], rehearsal: Any) -> dict[str, Any]:
        """`skywork-rl run --rehearse`: {dotted key: stand-in} for the external sources this stage's
        planned `config` names (models, datasets), the stand-ins made with `rehearsal`
        (`skywork_rl.runner.rehearsal.Rehearsal`: tiny models, a folder for stand-in data). Sizes are not
        this hook's business (`skywork_rl.runner.rehearsal.SIZE_RULE`). A stage that reads nothing external
        substitutes nothing."""
        return {}

    @abstractmethod
    def run(self) -> dict[str, float]:
        """Do the work; return the final metrics recorded in `stage.json`."""

    def discard_previous_run(self) -> None:
        """Remove what a previous run left that a fresh (forced) run must not pick up.

        Called by `run_stage` on the main process before a forced run. Training stages: the previous
        run's `checkpoint-*` folders (a later `resume_from_checkpoint: auto` would resume them, and
        `save_total_limit` would rotate the new ones out first) are removed, and its final model (every
        other file it saved) is moved into `PREVIOUS_RUN` inside the folder, so nothing that loads the
        folder as a model finds the previous config's weights while the new run trains; `run_stage`
        removes it once the new run completes. Data stages replace their own output.
        """
        if not self.output_dir_key.startswith("training."):
            return
        for path in sorted(self.output_dir.glob("checkpoint-*")):
            if path.is_dir():
                logger.info("--force: removing %s from the previous run", path)
                shutil.rmtree(path)
        set_aside_previous_model(self.output_dir)


# Inside a training stage's folder: the previous run's final model while a fresh run replaces it.
PREVIOUS_RUN = "previous_run_being_replaced"
# What the runner and `run_stage` keep in a stage's folder beside what the stage itself saves.
_RUNNER_FILES = frozenset(
    {STAGE_JSON, COMPLETE_MARKER, "stage.log", "recipe.yaml", DATASETS_CACHE, PREVIOUS_RUN}
)


def set_aside_previous_model(output_dir: Path) -> Path | None:
    """Move what a previous run of a stage saved in `output_dir` (model, processor, results; not its
    checkpoints nor the runner's files) into ``output_dir/PREVIOUS_RUN``; returns that folder, or None
    when there was nothing (or the folder holds no `stage.json`, so no stage made it)."""
    if not (output_dir / STAGE_JSON).is_file():
        return None
    leftovers = [
        p
        for p in sorted(output_dir.iterdir())
        if p.name not in _RUNNER_FILES and not p.name.startswith((".", "checkpoint-"))
    ]
    if not leftovers:
        return None
    aside = output_dir / PREVIOUS_RUN
    shutil.rmtree(aside, ignore_errors=True)  # an older one, from a fresh run that never completed
    aside.mkdir()
    for path in leftovers:
        os.replace(path, aside / path.name)
    logger.info(
        "fresh run: the previous run's model (%d files) moved to %s until this run completes",
        len(leftovers),
        aside,
    )
    return aside


def guards_own_output(stage_class: type[Stage]) -> bool:
    """Whether the stage's force overrides are permissions it checks itself (all flags set to true,
    like data stages' `output.overwrite`): such a stage refuses a finished output in its own guard,
    before touching its folder, and a recipe that sets the flag forces it as `--force` does."""
    leaves = _leaves(force_overrides_for(stage_class))
    return bool(leaves) and all(v is True for v in leaves)


def _leaves(tree: dict[str, Any]) -> list[Any]:
    return [x for v in tree.values() for x in (_leaves(v) if isinstance(v, dict) else [v])]


def get_dotted(obj: Any, key: str) -> Any:
    """`a.b.c` lookup over dataclasses, namespaces and dicts."""
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return _jsonable(obj.to_dict())
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", os.environ.get("PROCESS_INDEX", "0"))) == 0


def process_start_time() -> float:
    """When this process started (epoch seconds): from /proc on Linux, else when this module loaded."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _MODULE_LOADED


_MODULE_LOADED = time.time()


def refuse_if_finished(stage_class: type[Stage], output_dir: str | Path, force: bool) -> None:
    """Raise `StageRefused` when `output_dir` holds a finished stage and the run is not forced.

    Reads only. Stages that guard their own output (`guards_own_output`) refuse in that guard.
    """
    marker = Path(output_dir) / COMPLETE_MARKER
    if force or guards_own_output(stage_class) or not marker.exists():
        return
    if os.environ.get("WORLD_SIZE", "1") != "1" and marker.stat().st_mtime >= process_start_time():
        # Another process of this same launch finished the stage after this one started (a fast rank
        # 0 under `accelerate launch`): that is this run's completion, not a previous run's.
        return
    ended = marker.read_text().strip()
    raise StageRefused(
        f"{output_dir} holds a finished {stage_class.name} stage (completed {ended}): pass --force to "
        f"redo it from scratch, or set {stage_class.output_dir_key} to another folder"
    )


def stage_fingerprint(stage: Stage) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stage's fingerprint (config hash, input fingerprints, process count) and the resolved config
    it hashes. The process count is part of what a run computes (a global batch is per-device batch x
    processes); launchers set WORLD_SIZE, a plain process is one."""
    resolved = stage.resolved_config if stage.resolved_config is not None else _jsonable(stage.config)
    return (
        {
            "config": fingerprint.config_hash(type(stage), resolved),
            "inputs": fingerprint.stage_inputs(stage.input_model, stage.input_data),
            "processes": int(os.environ.get("WORLD_SIZE", "1")),
        },
        fingerprint.redacted(resolved),
    )


def run_stage(stage: Stage, force: bool = False) -> dict[str, float]:
    """Run `stage`, then write `stage.json` and the completion marker (main process only).

    A finished output folder is refused unless `force` (nothing on disk changes then); a missing local
    input fails before anything is written; a forced run first discards the previous run's leftovers.
    """
    out = stage.output_dir
    refuse_if_finished(type(stage), out, force)
    fingerprint.check_input_exists(stage.input_model, str(stage.input_model_key))
    fingerprint.check_input_exists(stage.input_data, str(stage.input_data_key))
    out.mkdir(parents=True, exist_ok=True)
    marker = out / COMPLETE_MARKER
    previous = {p: p.read_text() for p in (marker, out / STAGE_JSON) if p.exists()}
    fp, resolved = stage_fingerprint(stage)
    earlier_parts = _earlier_parts(previous.get(out / STAGE_JSON), fp, force)
    if _is_main_process():
        _warn_if_resuming_another_config(stage, fp, force)
        if marker.exists():
            marker.unlink()  # a re-run invalidates the old completion until it finishes again
        if force:
            stage.discard_previous_run()
    started = time.time()
    record: dict[str, Any] = {
        "stage": stage.name,
        "stage_class": f"{type(stage).__module__}:{type(stage).__qualname__}",
        "input_model": stage.input_model,
        "input_data": stage.input_data,
        "fingerprint": fp,
        "config": _jsonable(stage.config),
        "resolved_config": resolved,
        "argv": sys.argv,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "status": "running",
        "launch": launch_record(),
    }
    rehearsal = record_from_env()
    if rehearsal is not None:  # `skywork-rl run --rehearse`: what stood in for the real sources and sizes
        record["rehearsal"] = rehearsal
    # One part per process run of this stage: a resumed run adds a part to those of the run it continues.
    part: dict[str, Any] = {"started_at": record["started_at"], "status": "running"}
    record["parts"] = [*earlier_parts, part]
    if (out / PREVIOUS_RUN).is_dir():
        record["previous_run_set_aside"] = str(out / PREVIOUS_RUN)

    def close_part(status: str) -> None:
        part.update(status=status, ended_at=_now(), duration_s=round(time.time() - started, 3))
        part.update(_jsonable(getattr(stage, "run_part", None) or {}))
        record["totals"] = _totals(record["parts"])

    if _is_main_process():
        write_atomic(out / STAGE_JSON, json.dumps(record, indent=2))
    try:
        # The datasets the stage reads are mirrored and cached in its own folder, never in theirs.
        with dataset_cache_under(out / DATASETS_CACHE):
            metrics = stage.run()
    except StageRefused:
        if _is_main_process():
            for path, text in previous.items():
                write_atomic(path, text)
            if out / STAGE_JSON not in previous:
                (out / STAGE_JSON).unlink(missing_ok=True)
        raise
    except BaseException as exc:
        if _is_main_process():
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}", ended_at=_now())
            record["launch"] = launch_record()  # now read from the accelerator the stage built
            close_part("failed")
            try:
                write_atomic(out / STAGE_JSON, json.dumps(record, indent=2))
            except OSError as unwritten:  # the disk that failed the stage may refuse this too
                if storage_errno(unwritten) is None:
                    raise
                logger.warning("could not record the failure in %s: %s", out / STAGE_JSON, unwritten)
        fault = storage_error(exc, where=f"writing into {out} ({stage.output_dir_key})")
        if fault is not None:
            raise fault from exc
        raise
    if _is_main_process():
        ended = _now()
        fp["output"] = fingerprint.output_id(fp, ended)
        record.update(
            status="complete",
            ended_at=ended,
            duration_s=round(time.time() - started, 3),
            metrics=_jsonable(metrics or {}),
            launch=launch_record(),  # now read from the accelerator the stage built
        )
        close_part("complete")
        record.pop("previous_run_set_aside", None)
        write_atomic(out / STAGE_JSON, json.dumps(record, indent=2))
        write_atomic(marker, record["ended_at"] + "\n")
        shutil.rmtree(out / DATASETS_CACHE, ignore_errors=True)  # only a resume would reuse it
        shutil.rmtree(out / PREVIOUS_RUN, ignore_errors=True)  # replaced by this run's model
    return metrics


def _earlier_parts(old_text: str | None, fp: dict[str, Any], force: bool) -> list[dict[str, Any]]:
    """The parts of the unfinished run of the same config that this run continues (none when it
    starts afresh: forced, another config, or the previous run completed)."""
    if force or not old_text:
        return []
    try:
        old = json.loads(old_text)
    except ValueError:
        return []
    if not isinstance(old, dict) or old.get("status") == "complete":
        return []
    if (old.get("fingerprint") or {}).get("config") != fp["config"]:
        return []
    parts = old.get("parts")
    if not isinstance(parts, list):  # written before parts were recorded: its one part
        parts = [{k: old.get(k) for k in ("started_at", "ended_at", "duration_s", "status")}]
    parts = [dict(p) for p in parts if isinstance(p, dict)]
    if parts and parts[-1].get("status") == "running":
        parts[-1]["status"] = "interrupted"  # killed: it never recorded its end
    return parts


# Per-part counts that add up over the parts of a run (each part reports only its own).
_ADDITIVE = ("duration_s", "train_runtime", "num_tokens")


def _totals(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over every part of a run: wall time, training time, tokens (summed over the parts that
    recorded them: a process killed outright records no end), and how many times it was resumed."""
    totals: dict[str, Any] = {"parts": len(parts), "resumes": len(parts) - 1}
    for key in _ADDITIVE:
        values = [p[key] for p in parts if isinstance(p.get(key), (int, float))]
        if values:
            totals[key] = round(sum(values), 3)
    return totals


def _warn_if_resuming_another_config(stage: Stage, fp: dict[str, Any], force: bool) -> None:
    """An interrupted run of a different config would be resumed: say so (the pipeline never does
    this; it passes --force when a stage's fingerprint changed)."""
    old = fingerprint.read_record(stage.output_dir) or {}
    old_fp = old.get("fingerprint") or {}
    if force or old.get("status") == "complete" or not old_fp or old_fp.get("config") == fp["config"]:
        return
    changed = fingerprint.changed_keys(
        fingerprint.hashed_config(type(stage), old.get("resolved_config") or {}),
        fingerprint.hashed_config(type(stage), stage_fingerprint(stage)[1]),
    )
    logger.warning(
        "%s holds an interrupted run of another config (%s); its checkpoints may be resumed. "
        "Pass --force to start fresh.",
        stage.output_dir,
        "; ".join(changed[:5]) or "stage class changed",
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def is_complete(output_dir: str | Path) -> bool:
    """Whether a stage's output folder carries its completion marker."""
    return (Path(output_dir) / COMPLETE_MARKER).exists()


__all__ = [
    "COMPLETE_MARKER",
    "PREVIOUS_RUN",
    "STAGE_JSON",
    "RecipeError",
    "Stage",
    "StageRefused",
    "build_parser",
    "force_overrides_for",
    "get_dotted",
    "is_complete",
    "load_stage",
    "parse_stage_config",
    "run_stage",
    "write_atomic",
]
