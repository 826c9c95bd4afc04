"""`skywork-rl run PIPELINE.yaml`: the papers' stages chained, each under `accelerate launch`.

The pipeline file is resolved by `plan` (stages, configs, inputs), each stage's fate is
decided by `state` from the fingerprints in its ``stage.json`` (skip / run / resume, and
why), and the stages that must run are started here one after the other, each in its own process
group that dies with the runner (`stage_process`), their output written to ``stage.log`` as it
arrives and shown on the console as a header, live progress bars, each warning once and a closing
line (`console`). A failed stage stops the chain with the end of its log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from skywork_rl.errors import SkyworkError
from skywork_rl.miniature.heldout_report import render_line, write_heldout_summary
from skywork_rl.preflight.command import preflight_pipeline
from skywork_rl.preflight.guard import CHECKED_ENV, guard_pipeline
from skywork_rl.records.atomic import write_atomic
from skywork_rl.records.fingerprint import read_record, stage_inputs
from skywork_rl.runner.console import StageConsole, is_progress
from skywork_rl.runner.plan import PlannedStage, check_made_inputs, check_models, plan_pipeline, validate
from skywork_rl.runner.rehearsal import default_root, rehearse_plan, write_record
from skywork_rl.runner.stage_process import run_streaming
from skywork_rl.runner.state import Decision, decide, select

__all__ = ["PipelineError", "PlannedStage", "main", "plan_pipeline", "run_pipeline"]


def _preflight(path: str | Path, spec: dict[str, Any], stages: list[Any]) -> None:
    """`skywork-rl preflight`'s checks on the plan, with this machine's GPUs (none: only the checks
    that need no hardware, e.g. vLLM's tensor-parallel rule, can refuse); raises what cannot run."""
    report = preflight_pipeline(path, planned=(spec, stages))
    print("\npreflight (`skywork-rl preflight` for other hardware):")
    print(report.render())
    report.raise_if_refused()


class PipelineError(SkyworkError, RuntimeError):
    """A stage of the pipeline failed; the runner has shown the end of its log, the message names it."""


def run_pipeline(
    path: str | Path,
    *,
    dry_run: bool = False,
    force: bool = False,
    output_root: str | None = None,
    quiet: bool = False,
    verbose: bool = False,
    start: str | None = None,
    only: list[str] | None = None,
    rehearse: bool = False,
    skip_preflight: bool = False,
) -> dict[str, Any]:
    """Run (or with `dry_run`, print) a pipeline; returns the report written to `output_root`.

    Where GPUs are visible, the stages that will run are checked by preflight first (a refusal starts
    nothing); `skip_preflight` leaves it out. `rehearse`: the same graph on CPU with tiny stand-ins and
    the sizes of `skywork_rl.runner.rehearsal` (output under outputs/rehearsal/<name> unless `output_root`
    says otherwise; no preflight: it runs on the CPU whatever GPUs the machine has)."""
    if rehearse:
        output_root = output_root or str(default_root(path))
        skip_preflight = True
    spec, stages = plan_pipeline(path, output_root)  # each stage's config parsed once, in memory
    check_made_inputs(stages)
    if rehearse:
        rehearse_plan(stages, stages[0].output_dir.parent)
        for stage in stages:
            validate(stage)  # the stand-ins changed the configs
    check_models(stages)
    decisions = decide(stages, select(stages, start, only), force=force)
    if dry_run:
        _print_plan(stages, decisions, verbose)
        if not rehearse:  # a rehearsal runs on the CPU whatever GPUs this machine has
            _preflight(path, spec, stages)
        return {
            "dry_run": True,
            "stages": [s.id for s in stages],
            "decisions": [{"id": s.id, **vars(d)} for s, d in zip(stages, decisions, strict=True)],
        }
    if not skip_preflight:
        starting = {s.id for s, d in zip(stages, decisions, strict=True) if d.action in ("run", "resume")}
        guard_pipeline(path, spec, stages, starting)
    root = stages[0].output_dir.parent
    root.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "pipeline": str(path),
        "name": spec.get("name"),
        "output_root": str(root),
        "stages": [],
    }
    mode = "quiet" if quiet else "verbose" if verbose else "normal"
    seen: set[str] = set()  # warnings shown so far, across stages
    started = time.time()
    for n, (stage, decision) in enumerate(zip(stages, decisions, strict=True), 1):
        label = f"[{n}/{len(stages)}] {stage.id} ({stage.stage})"
        entry: dict[str, Any] = {"id": stage.id, "stage": stage.stage, "output_dir": str(stage.output_dir)}
        entry.update(action=decision.action, reason=decision.reason)
        if decision.action in ("skip", "not selected"):
            print(f"{label}: {decision.action}, {decision.reason}", flush=True)
            entry.update(status="skipped", **_stage_record(stage))
            report["stages"].append(entry)
            continue
        t0 = time.time()
        code, log_path = _run_stage(
            stage, decision, label, StageConsole(sys.stdout, mode, sys.stdout.isatty(), seen)
        )
        if code:
            entry.update(status="failed", exit_code=code, log=str(log_path))
            report["stages"].append(entry)
            _write_report(root, report, started)
            print(f"{label}: failed with exit code {code}; the end of {log_path}:", flush=True)
            print("\n".join(f"  | {line}" for line in log_tail(log_path)), flush=True)
            raise PipelineError(
                f"stage {stage.id} ({stage.stage}) failed with exit code {code}; full log: {log_path}"
            )
        entry.update(status="ran", seconds=round(time.time() - t0, 1), **_stage_record(stage))
        print(f"{label}: done in {entry['seconds']} s{_shown_metrics(stage, entry, ': ')}", flush=True)
        report["stages"].append(entry)
    mark_stale(stages, report["stages"])
    curve = write_heldout_summary(report, root)
    _write_report(root, report, started)
    _print_report(report, stages)
    if curve:
        print(f"  {render_line(curve)} (plot: {report['heldout_plot']})", flush=True)
    return report


def _run_stage(
    stage: PlannedStage, decision: Decision, label: str, console: StageConsole
) -> tuple[int, Path]:
    """Write the stage's recipe, run its command, stream its output; returns (exit code, log path)."""
    stage.output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(stage.recipe_file, yaml.safe_dump(stage.config, sort_keys=False))
    log_path = stage.output_dir / "stage.log"
    print(f"{label}: {decision.action}, {decision.reason} (log: {log_path})", flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", CHECKED_ENV: "1"}  # the runner checked the plan
    if stage.rehearsal is not None:
        env.update(write_record(stage))
    cmd = stage.command(force=decision.fresh)
    # A resumed stage adds to the log of the run it continues; a fresh one starts a new log.
    with log_path.open("ab" if decision.action == "resume" else "wb", buffering=0) as log:
        log.write(f"### skywork-rl run: {decision.action} ({decision.reason}) at {time.ctime()}\n".encode())
        log.write(f"### {shlex.join(cmd)}\n".encode())

        def on_output(data: bytes) -> None:
            log.write(data)  # unbuffered: `tail -f stage.log` follows the stage as it runs
            console.feed(data)

        try:
            code = run_streaming(cmd, env, on_output)
        finally:
            console.close()
    return code, log_path


def log_tail(log_path: Path, lines: int = 30) -> list[str]:
    """The last `lines` lines of a stage log as a terminal would show them (bar redraws collapsed)."""
    text = log_path.read_bytes().decode("utf-8", errors="replace")
    shown = []
    for line in text.split("\n"):
        visible = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line.split("\r")[-1] or line.replace("\r", ""))
        if visible.strip() and not is_progress(visible):
            shown.append(visible.rstrip())
    return shown[-lines:]


def _print_plan(stages: list[PlannedStage], decisions: list[Decision], verbose: bool) -> None:
    for n, (stage, decision) in enumerate(zip(stages, decisions, strict=True), 1):
        print(f"[{n}/{len(stages)}] {stage.id} ({stage.stage}): {decision.action}, {decision.reason}")
        print(f"    output: {stage.output_dir}")
        if stage.input_model:
            print(f"    model:  {stage.input_model}")
        if stage.input_data:
            print(f"    data:   {stage.input_data}")
        if decision.action in ("run", "resume"):
            print(f"    cmd:    {shlex.join(stage.command(force=decision.fresh))}")
        if verbose:
            for line in yaml.safe_dump(stage.config, sort_keys=False).splitlines():
                print(f"      {line}")


def mark_stale(stages: list[PlannedStage], entries: list[dict[str, Any]]) -> None:
    """Mark each stage that did not run but whose output no longer follows from its inputs as
    ``stale``: an input was re-made after it finished (`--only`/`--from` ran an earlier stage), or it
    was built on a stale stage. Its old metrics move to ``stale_metrics``, out of the closing table,
    ``heldout_accuracy`` and the plot, so no report mixes results of two runs."""
    stale: dict[str, str] = {}  # output folder -> id of the stale stage that made it
    for stage, entry in zip(stages, entries, strict=True):
        if entry.get("status") != "skipped":
            continue
        reason = _stale_reason(stage, stale)
        if reason:
            entry.update(status="stale", stale_reason=reason, stale_metrics=entry.pop("metrics", {}))
            stale[_norm(stage.output_dir)] = stage.id


def _stale_reason(stage: PlannedStage, stale: dict[str, str]) -> str | None:
    record = read_record(stage.output_dir)
    if record is None or not record.get("fingerprint"):
        return None  # never ran: nothing to show, nothing to mix
    inputs = {"model": stage.input_model, "data": stage.input_data}
    for name, location in inputs.items():
        if location and _norm(location) in stale:
            return f"its {name} is stage {stale[_norm(location)]}'s, which is stale"
    recorded = record["fingerprint"].get("inputs") or {}
    now = stage_inputs(stage.input_model, stage.input_data)
    changed = [name for name in now if recorded.get(name) != now[name]]
    if changed:
        return "; ".join(f"its {name} ({inputs[name]}) was re-made after it finished" for name in changed)
    return None


def _norm(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def _stage_record(stage: PlannedStage) -> dict[str, Any]:
    record = read_record(stage.output_dir) or {}
    return {"metrics": record.get("metrics", {}), "duration_s": record.get("duration_s")}


def _write_report(root: Path, report: dict[str, Any], started: float) -> None:
    report["total_seconds"] = round(time.time() - started, 1)
    write_atomic(root / "pipeline_report.json", json.dumps(report, indent=2))


def _shown_metrics(stage: PlannedStage, entry: dict[str, Any], prefix: str = "") -> str:
    """The stage's declared `report_keys` that its stage.json has, as `name=value`."""
    metrics = entry.get("metrics") or {}
    shown = ", ".join(
        f"{k.removeprefix('final_')}={metrics[k]:.4g}"
        for k in stage.stage_class.report_keys
        if isinstance(metrics.get(k), (int, float))
    )
    return f"{prefix}{shown}" if shown else ""


def _print_report(report: dict[str, Any], stages: list[PlannedStage]) -> None:
    print(
        f"\npipeline {report.get('name')} finished in {report['total_seconds']} s; report: "
        f"{report['output_root']}/pipeline_report.json"
    )
    for stage, entry in zip(stages, report["stages"], strict=True):
        shown = f"({entry['stale_reason']})" if entry["status"] == "stale" else _shown_metrics(stage, entry)
        print(f"  {entry['id']:14s} {entry['stage']:16s} {entry['status']:8s} {shown}")
    stale = [entry["id"] for entry in report["stages"] if entry["status"] == "stale"]
    if stale:
        print(
            f"  stale: {', '.join(stale)} no longer match their inputs; their old results are left out "
            f"(re-make them: skywork-rl run {report['pipeline']} --from {stale[0]})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="skywork-rl run",
        description="Run a pipeline YAML: each stage under `accelerate launch`, outputs chained. A finished "
        "stage whose config and inputs are unchanged (fingerprints in its stage.json) is skipped, a changed "
        "one re-runs from scratch with every stage after it that reads its output, an interrupted one "
        "resumes; a failed stage stops the chain.",
    )
    parser.add_argument("pipeline", help="pipeline YAML (e.g. recipes/tiny/pipeline.yaml)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print each stage's fate (skip/run/resume, why)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="re-run every selected stage from scratch: training stages do not resume their checkpoints, "
        "data stages overwrite their outputs",
    )
    parser.add_argument(
        "--from",
        dest="start",
        metavar="ID",
        help="start at stage ID; earlier stages are not run and their finished outputs are used as they are",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="ID",
        help="consider only stage ID (repeatable); the others are not run, their finished outputs are used",
    )
    parser.add_argument("--output-root", help="override the pipeline's output_root")
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="run the pipeline's exact graph on CPU with tiny stand-in models and data, every recipe value "
        "the same except sizes and sources (skywork_rl/runner/rehearsal.py); output under outputs/rehearsal/NAME",
    )
    parser.add_argument(
        "--skip-preflight",
        action="store_true",
        help="start the stages even if preflight, run on this machine's GPUs before the first stage, refuses",
    )
    parser.add_argument("--quiet", action="store_true", help="show no stage output (stage.log has it all)")
    parser.add_argument("--verbose", action="store_true", help="stream every stage's output unfiltered")
    args = parser.parse_args(argv)
    run_pipeline(
        args.pipeline,
        dry_run=args.dry_run,
        force=args.force,
        output_root=args.output_root,
        quiet=args.quiet,
        verbose=args.verbose,
        start=args.start,
        only=args.only,
        rehearse=args.rehearse,
        skip_preflight=args.skip_preflight,
    )
    return 0
