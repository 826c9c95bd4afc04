"""The whole tiny pipeline on every model family, with only the tiny-model stage's `arch` changed.

For each family, writes a copy of ``recipes/tiny/pipeline.yaml`` whose `tiny-model` stage says
``tiny: {arch: <family>}`` (and, unless ``--recipe-steps``, fewer training steps: this checks that
every stage runs on every family, not what the tiny model learns), runs it with `skywork-rl run`'s
runner (`skywork_rl.pipeline.run_pipeline`: every stage a subprocess under `accelerate launch`),
then checks what the connector stage promises: only the connector's tensors differ between the GRPO
output and the connector output, and they do differ. Writes ``families_pipeline.json`` (per family:
status, seconds per stage, total, the connector check, the error line of a failed stage) into
``--out`` and prints a table.

    python benchmarks/families_pipeline.py --out outputs/families            # all eleven
    python benchmarks/families_pipeline.py --out outputs/families --arch paligemma gemma3
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_PIPELINE = REPO / "recipes" / "tiny" / "pipeline.yaml"
# Training steps per training stage when the recipe's are not kept: a few optimizer steps each.
SHORT_STEPS = {"sft": 4, "mpo": 2, "grpo": 2, "connector": 2}


def family_pipeline(
    arch: str, steps: dict[str, int] | None = None, source: Path = TINY_PIPELINE
) -> dict[str, Any]:
    """The tiny pipeline with `arch` as its tiny model (and `steps` training steps per stage kind), its
    recipe and accelerate paths made absolute so the copy runs from any folder."""
    spec = yaml.safe_load(source.read_text())
    out = copy.deepcopy(spec)
    base = source.parent
    if out.get("accelerate_config"):
        out["accelerate_config"] = str((base / out["accelerate_config"]).resolve())
    models = [e for e in out["stages"] if e["stage"] == "tiny-model"]
    if len(models) != 1:
        raise ValueError(f"{source}: expected one tiny-model stage, found {len(models)}")
    for entry in out["stages"]:
        if "recipe" in entry:
            entry["recipe"] = str((base / entry["recipe"]).resolve())
        if entry.get("accelerate_config"):
            entry["accelerate_config"] = str((base / entry["accelerate_config"]).resolve())
        if entry["stage"] == "tiny-model":
            entry.setdefault("config", {}).setdefault("tiny", {})["arch"] = arch
        if steps and entry["stage"] in steps:
            n = steps[entry["stage"]]
            training = entry.setdefault("overrides", {}).setdefault("training", {})
            training.update(max_steps=n, save_steps=n)
    out["name"] = f"{spec.get('name', 'tiny')}-{arch}"
    return out


def connector_isolation(before_dir: Path, after_dir: Path) -> dict[str, Any]:
    """Which parameters the connector stage changed: only (and some of) the family's connector ones?"""
    import torch
    from transformers import AutoModelForImageTextToText

    from skywork_rl.models import resolve_connector

    before_model = AutoModelForImageTextToText.from_pretrained(before_dir, dtype=torch.float32)
    after_model = AutoModelForImageTextToText.from_pretrained(after_dir, dtype=torch.float32)
    connector = set(resolve_connector(before_model))
    before, after = dict(before_model.named_parameters()), dict(after_model.named_parameters())
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    outside = [k for k in changed if k not in connector]
    return {
        "connector_tensors": len(connector),
        "changed_tensors": len(changed),
        "changed_outside_connector": outside,
        "holds": bool(changed) and not outside and set(before) == set(after),
    }


def run_family(arch: str, out: Path, steps: dict[str, int] | None) -> dict[str, Any]:
    """Run one family's pipeline and check its connector stage; never raises for a failed stage."""
    from skywork_rl.pipeline import PipelineError, run_pipeline

    folder = out / arch
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(family_pipeline(arch, steps), sort_keys=False))
    started, cpu = time.time(), _children_cpu()
    result: dict[str, Any] = {"arch": arch}
    try:
        report = run_pipeline(path, output_root=str(folder / "run"), quiet=True)
    except PipelineError as exc:
        report = json.loads((folder / "run" / "pipeline_report.json").read_text())
        result.update(status="failed", error=_error_line(str(exc)))
    else:
        result["status"] = "ran"
    result["seconds"] = round(time.time() - started, 1)
    result["cpu_seconds"] = round(_children_cpu() - cpu, 1)  # the stage processes' CPU time, load-proof
    result["stages"] = {
        s["id"]: {"status": s["status"], "seconds": s.get("seconds")} for s in report["stages"]
    }
    stage_dirs = {s["id"]: Path(s["output_dir"]) for s in report["stages"] if s["status"] == "ran"}
    if result["status"] == "ran":
        result["connector"] = connector_isolation(stage_dirs["grpo"], stage_dirs["connector"])
        if not result["connector"]["holds"]:
            result["status"] = "connector isolation broken"
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _error_line(message: str) -> str:
    """The stage's own error line from the log tail the pipeline error carries."""
    lines = [line.strip(" |") for line in message.splitlines()]
    errors = [line for line in lines if "Error:" in line or line.startswith("error:")]
    return errors[-1] if errors else lines[0]


def main(argv: list[str] | None = None) -> int:
    from skywork_rl.tiny import TINY_ARCHS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/families"))
    parser.add_argument("--arch", nargs="*", default=list(TINY_ARCHS), choices=TINY_ARCHS)
    parser.add_argument(
        "--recipe-steps",
        action="store_true",
        help="keep the recipes' training steps (slow: minutes per family)",
    )
    args = parser.parse_args(argv)
    steps = None if args.recipe_steps else SHORT_STEPS
    results = []
    for arch in args.arch:
        result = run_family(arch, args.out, steps)
        results.append(result)
        print(
            f"{arch:16s} {result['status']:10s} {result['seconds']:7.1f} s wall, "
            f"{result['cpu_seconds']:6.1f} s CPU  {result.get('error', '')}",
            flush=True,
        )
        (args.out / "families_pipeline.json").write_text(
            json.dumps({"steps": steps, "families": results}, indent=2)
        )
    return 0 if all(r["status"] == "ran" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
