"""The whole tiny pipeline on every model family, with only the tiny-model stage's `arch` changed.

For each family, one at a time (every stage is CPU-heavy), writes a copy of
``recipes/tiny/pipeline.yaml`` whose `tiny-model` stage says ``tiny: {arch: <family>}`` and nothing
else changed, runs it as a user does (``skywork-rl run <copy>``: each stage a process under
`accelerate launch`), records the exit status and wall time, then checks what the connector stage
promises: between the GRPO output and the connector output only the family's connector tensors
differ, and they do differ. ``--short`` also cuts each training stage to a few optimizer steps
(it then checks that every stage runs on every family, not what the tiny model learns).

Writes ``families_pipeline.json`` (per family: exit code, wall and CPU seconds, seconds per stage,
the connector check, the failing stage's error line; the load average before and after, since the
times depend on what else the machine runs) and ``families_pipeline.md`` (the same as a table) into
``--out``, after each family, so a run cut short keeps what finished.

    python benchmarks/families_pipeline.py --out outputs/families            # all eleven
    python benchmarks/families_pipeline.py --out outputs/families --arch paligemma gemma3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from skywork_rl.records.atomic import write_atomic

REPO = Path(__file__).resolve().parents[1]
TINY_PIPELINE = REPO / "recipes" / "tiny" / "pipeline.yaml"
# --short: training steps per training stage (and a checkpoint at the end, as the recipes save one).
SHORT_STEPS = {"sft": 4, "mpo": 2, "grpo": 2, "connector": 2}


def family_pipeline(
    arch: str, steps: dict[str, int] | None = None, source: Path = TINY_PIPELINE
) -> dict[str, Any]:
    """The tiny pipeline with `arch` as its tiny model (and, if given, `steps` training steps per stage
    kind), its recipe and accelerate paths made absolute so the copy runs from any folder."""
    spec = yaml.safe_load(source.read_text())
    out = copy.deepcopy(spec)
    base = source.parent
    if out.get("accelerate_config"):
        out["accelerate_config"] = str((base / out["accelerate_config"]).resolve())
    # The policy is the tiny-model stage with id `model`; the judges (verifier, reward model) are
    # tiny-model stages too and stay as they are: only the trained model's family changes.
    models = [e for e in out["stages"] if e["stage"] == "tiny-model" and e.get("id") == "model"]
    if len(models) != 1:
        raise ValueError(f"{source}: expected one tiny-model stage with id 'model', found {len(models)}")
    for entry in out["stages"]:
        if "recipe" in entry:
            entry["recipe"] = str((base / entry["recipe"]).resolve())
        if entry.get("accelerate_config"):
            entry["accelerate_config"] = str((base / entry["accelerate_config"]).resolve())
        if entry is models[0]:
            entry.setdefault("config", {}).setdefault("tiny", {})["arch"] = arch
        if steps and entry["stage"] in steps:
            n = steps[entry["stage"]]
            training = entry.setdefault("overrides", {}).setdefault("training", {})
            training.update(max_steps=n, save_steps=n)
    return out


def connector_isolation(before_dir: Path, after_dir: Path) -> dict[str, Any]:
    """Which parameters the connector stage changed: only (and some of) the family's connector ones?"""
    import torch
    from transformers import AutoModelForImageTextToText

    from skywork_rl.families.parts import resolve_connector

    before_model = AutoModelForImageTextToText.from_pretrained(before_dir, dtype=torch.float32)
    after_model = AutoModelForImageTextToText.from_pretrained(after_dir, dtype=torch.float32)
    connector = set(resolve_connector(before_model))
    before, after = dict(before_model.named_parameters()), dict(after_model.named_parameters())
    changed = sorted(k for k in before if k in after and not torch.equal(before[k], after[k]))
    outside = [k for k in changed if k not in connector]
    return {
        "connector_tensors": len(connector),
        "changed_tensors": len(changed),
        "changed_outside_connector": outside,
        "holds": bool(changed) and not outside and set(before) == set(after),
    }


def run_pipeline_copy(spec: dict[str, Any], folder: Path) -> tuple[dict[str, Any], Path]:
    """Write `spec` to ``folder/pipeline.yaml`` and run it as a user does (``skywork-rl run`` with
    ``--force``, output under ``folder/run``, console in ``folder/console.log``): its exit code, wall and
    CPU seconds (the stage processes'), the 1-minute load average before and after, and the run's root."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    write_atomic(path, yaml.safe_dump(spec, sort_keys=False))
    root = folder / "run"
    command = [
        sys.executable,
        "-m",
        "skywork_rl.cli",
        "run",
        str(path),
        "--output-root",
        str(root),
        "--force",
    ]
    result: dict[str, Any] = {"load_before": _load()}
    started, cpu = time.time(), _children_cpu()
    with (folder / "console.log").open("wb") as console:
        code = subprocess.run(command, stdout=console, stderr=subprocess.STDOUT, env=os.environ).returncode
    result.update(exit_code=code, seconds=round(time.time() - started, 1))
    result["cpu_seconds"] = round(_children_cpu() - cpu, 1)
    result["load_after"] = _load()
    return result, root


def run_family(arch: str, out: Path, steps: dict[str, int] | None) -> dict[str, Any]:
    """`skywork-rl run` one family's pipeline and check its connector stage; never raises for a failure."""
    folder = out / arch
    result, root = run_pipeline_copy(family_pipeline(arch, steps), folder)
    result = {"arch": arch, **result}
    report_path = root / "pipeline_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"stages": []}
    result["stages"] = {
        s["id"]: {"status": s["status"], "seconds": s.get("seconds")} for s in report["stages"]
    }
    if result["exit_code"]:
        result["status"] = "failed"
        result["error"] = _error_line(folder / "console.log")
        return result
    result["status"] = "ran"
    dirs = {s["id"]: Path(s["output_dir"]) for s in report["stages"]}
    # The connector stage's start (the model `select` chose), as its stage.json records it.
    start = Path(json.loads((dirs["connector"] / "stage.json").read_text())["input_model"])
    result["connector"] = connector_isolation(start, dirs["connector"])
    if not result["connector"]["holds"]:
        result["status"] = "connector isolation broken"
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _error_line(console_log: Path) -> str:
    """The failing stage's own error line from the console output (the runner prints its log tail)."""
    lines = [
        line.strip(" |") for line in console_log.read_text(errors="replace").splitlines() if line.strip()
    ]
    errors = [line for line in lines if "Error:" in line or line.startswith("error:")]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def markdown(results: list[dict[str, Any]], steps: dict[str, int] | None) -> str:
    """One row per family: status, exit code, wall / CPU seconds, the longest stages, connector check."""
    what = f"training steps cut to {steps}" if steps else "recipes' own training steps (only `arch` changed)"
    lines = [
        f"Tiny pipeline per family, {what}; times on this machine under the load shown (1-min load average).",
        "",
        "| family | status | exit | wall s | CPU s | load before/after | sft s | grpo s | connector: changed / connector tensors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        stages, conn = r.get("stages", {}), r.get("connector") or {}
        check = f"{conn['changed_tensors']} / {conn['connector_tensors']}" if conn else "-"
        lines.append(
            f"| {r['arch']} | {r['status']} | {r['exit_code']} | {r['seconds']} | {r['cpu_seconds']} | "
            f"{r['load_before']} / {r['load_after']} | {stages.get('sft', {}).get('seconds', '-')} | "
            f"{stages.get('grpo', {}).get('seconds', '-')} | {check} |"
        )
    failed = [r for r in results if r["status"] != "ran"]
    lines += ["", *(f"- {r['arch']}: {r.get('error', r['status'])}" for r in failed)]
    return "\n".join(lines).rstrip() + "\n"


def earlier_results(path: Path, steps: dict[str, int] | None, keep_out: list[str]) -> list[dict[str, Any]]:
    """The families an earlier run into the same folder, with the same steps, finished and this one does
    not re-run: a run of some families adds to the file instead of replacing it."""
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    if earlier.get("steps") != steps:
        return []
    return [r for r in earlier["families"] if r["arch"] not in keep_out]


def main(argv: list[str] | None = None) -> int:
    from skywork_rl.miniature.tiny import TINY_ARCHS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/families"))
    parser.add_argument("--arch", nargs="*", default=list(TINY_ARCHS), choices=TINY_ARCHS)
    parser.add_argument("--short", action="store_true", help=f"cut training to a few steps: {SHORT_STEPS}")
    args = parser.parse_args(argv)
    steps = SHORT_STEPS if args.short else None
    args.out.mkdir(parents=True, exist_ok=True)
    results = earlier_results(args.out / "families_pipeline.json", steps, keep_out=args.arch)
    for arch in args.arch:
        result = run_family(arch, args.out, steps)
        results.append(result)
        print(
            f"{arch:16s} {result['status']:10s} exit {result['exit_code']} {result['seconds']:7.1f} s wall, "
            f"{result['cpu_seconds']:7.1f} s CPU, load {result['load_before']}->{result['load_after']}  "
            f"{result.get('error', '')}",
            flush=True,
        )
        write_atomic(
            args.out / "families_pipeline.json", json.dumps({"steps": steps, "families": results}, indent=2)
        )
        write_atomic(args.out / "families_pipeline.md", markdown(results, steps))
    return 0 if all(r["status"] == "ran" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
