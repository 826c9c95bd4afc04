"""Evaluate a checkpoint: generate for each benchmark (resumable), score, write the report.

Layout of ``output_dir``: ``<benchmark>.responses.jsonl`` (one line per item, appended and
flushed as batches finish: a killed run resumes from it and never regenerates a saved response),
``<benchmark>.meta.json`` (what wrote those responses: model, backend, sampling, MMMU parser and
the benchmark source; a resume with other settings is refused, naming the changed keys, unless
``overwrite`` discards the saved responses), ``<benchmark>.json`` (scores with every item) and
``report.json`` (overall and per benchmark, subject and category, plus the profile, the sampling
settings and, with k samples per item, each sample's accuracy).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from eval.benchmarks import EvalItem, get_benchmark, load_items, response_record, score_records
from eval.deadline import DEFAULT_TIMEOUT_S
from eval.loading import find_local
from skywork_rl.families.capabilities import check_checkpoint_family
from skywork_rl.generation.backends import make_backend
from skywork_rl.generation.protocol import GenerationBackend, SamplingParams, not_generated
from skywork_rl.records.atomic import write_atomic

logger = logging.getLogger("skywork_rl.eval")


@dataclass
class EvalSettings:
    """Sampling and bookkeeping. The CLI fills ``sampling`` and ``num_samples`` from an eval profile
    (`eval.profiles`: R1V3's avg@5 at temperature 1.0 by default); ``max_new_tokens`` must fit the
    model's reasoning length. ``num_samples`` responses are generated per item (avg@k)."""

    sampling: SamplingParams
    batch_size: int = 8
    save_every: int = 32
    mmmu_reasoning: bool = True
    trust_remote_code: bool = False
    backend_kwargs: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 1
    profile: str | None = None
    score_timeout_s: float = DEFAULT_TIMEOUT_S


def build_backend_kwargs(backend_name: str, settings: EvalSettings) -> dict[str, Any]:
    """Keyword arguments for ``make_backend(backend_name, model, **kwargs)``.

    ``batch_size`` is a TransformersBackend argument only: VLLMBackend hands unknown keywords to
    ``vllm.LLM``, which rejects it (vLLM batches by itself). ``settings.backend_kwargs`` (e.g.
    ``tensor_parallel_size``, ``max_model_len`` for vLLM) go through unchanged and win."""
    if backend_name not in ("transformers", "vllm"):
        raise ValueError(f"unknown generation backend {backend_name!r}; choose 'transformers' or 'vllm'")
    kwargs: dict[str, Any] = {"trust_remote_code": settings.trust_remote_code}
    if backend_name == "transformers":
        kwargs["batch_size"] = settings.batch_size
    return {**kwargs, **settings.backend_kwargs}


def read_responses(path: Path) -> dict[str, dict[str, Any]]:
    """Saved responses by id; a torn last line (the run was killed mid-write) is dropped and rewritten away."""
    if not path.exists():
        return {}
    records: dict[str, dict[str, Any]] = {}
    lines = path.read_text().splitlines()
    good: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                logger.warning("%s: dropping a torn last line (interrupted write)", path)
                continue
            raise ValueError(
                f"{path}:{number}: not JSON; delete the line or the file to regenerate it"
            ) from None
        records[record["id"]] = record
        good.append(line)
    if len(good) != len([ln for ln in lines if ln.strip()]):
        write_atomic(path, "".join(ln + "\n" for ln in good))
    return records


def _append(path: Path, records: Sequence[dict[str, Any]]) -> None:
    # Appended whole lines (a torn last one is dropped on reading); text UTF-8 cannot encode is escaped.
    with path.open("a", encoding="utf-8", errors="backslashreplace") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class ResumeMismatchError(ValueError):
    """Saved responses were written with other settings than this run's."""


def benchmark_source(name: str, path: str | Path | None, data_dir: str | Path | None) -> dict[str, Any]:
    """Where a benchmark's items come from: the local file or folder (resolved path, bytes, newest
    mtime) or the hub id and split. Size and mtime stand in for a digest, which would mean reading
    every image-laden parquet on each resume."""
    local = Path(path) if path is not None else find_local(name, data_dir)
    if local is None:
        spec = get_benchmark(name)
        return {"hub_id": spec.hub_id, "split": spec.split}
    files = [p for p in local.rglob("*") if p.is_file()] if local.is_dir() else [local]
    stats = [f.stat() for f in files if f.exists()]
    return {
        "path": str(local.resolve()),
        "bytes": sum(s.st_size for s in stats),
        "mtime": max((s.st_mtime for s in stats), default=None),
    }


def run_meta(
    name: str, model: str | None, backend: str, settings: EvalSettings, source: dict[str, Any]
) -> dict[str, Any]:
    """What determines a benchmark's saved responses (written to ``<benchmark>.meta.json``)."""
    meta: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "sampling": asdict(settings.sampling),
        "num_samples": settings.num_samples,
        # chunk boundaries fix each item's sampling seed
        "save_every": settings.save_every,
        "source": source,
    }
    if get_benchmark(name).reasoning_parser:
        meta["mmmu_parser"] = "reasoning" if settings.mmmu_reasoning else "official"
    return meta


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key} ({a!r} -> {b!r})")
    return changed


def check_resume(responses_path: Path, meta: dict[str, Any], *, overwrite: bool) -> None:
    """Refuse to reuse saved responses written with other settings; with ``overwrite``, discard them.

    Responses are keyed by item id only, so without this check a run for model B into model A's
    folder would report A's answers under B's name."""
    meta_path = responses_path.with_name(responses_path.name.replace(".responses.jsonl", ".meta.json"))
    if overwrite:
        responses_path.unlink(missing_ok=True)
    elif responses_path.exists() and responses_path.read_text().strip():
        if not meta_path.exists():
            raise ResumeMismatchError(
                f"{responses_path}: saved responses without {meta_path.name}, so the model and sampling that "
                "wrote them are unknown; pass --overwrite to regenerate them or choose another --output-dir"
            )
        changed = _changed_keys(json.loads(meta_path.read_text()), meta)
        if changed:
            raise ResumeMismatchError(
                f"{responses_path}: saved responses were written with other settings: {'; '.join(changed)}. "
                "Pass --overwrite to discard and regenerate them, or choose another --output-dir"
            )
    write_atomic(meta_path, json.dumps(meta, indent=2, ensure_ascii=False))


def generate_missing(
    items: Sequence[EvalItem], responses_path: Path, backend: GenerationBackend, settings: EvalSettings
) -> dict[str, dict[str, Any]]:
    """Generate the items without a saved response, saving after every chunk of ``save_every`` items.

    Chunks are cut from the full item list and each is seeded ``seed + its start there``, so a
    resumed run samples its remaining items with the seeds an uninterrupted run would have used."""
    saved = read_responses(responses_path)
    missing = sum(item.id not in saved for item in items)
    if saved:
        logger.info(
            "%s: %d saved responses reused, %d to generate",
            responses_path.name,
            len(items) - missing,
            missing,
        )
    sampling = settings.sampling
    bar = tqdm(
        total=len(items),
        initial=len(items) - missing,
        desc=f"{responses_path.name.split('.')[0]}: generate",
        unit="item",
    )
    for start in range(0, len(items), settings.save_every):
        chunk = [item for item in items[start : start + settings.save_every] if item.id not in saved]
        if not chunk:
            continue
        texts = backend.generate(
            [item.row for item in chunk],
            sampling=replace(sampling, seed=sampling.seed + start),
            num_generations=settings.num_samples,
        )
        # one sample keeps the single-response shape; k samples go to "responses" (avg@k)
        skipped = not_generated(texts)
        records = [
            response_record(item, out, skipped.get(position), settings.num_samples)
            for position, (item, out) in enumerate(zip(chunk, texts, strict=True))
        ]
        _append(responses_path, records)
        saved.update({r["id"]: r for r in records})
        bar.update(len(chunk))
    bar.close()
    return saved


def run_eval(
    benchmarks: Sequence[str],
    output_dir: str | Path,
    *,
    backend: GenerationBackend | None = None,
    model: str | None = None,
    backend_name: str = "transformers",
    files: dict[str, str] | None = None,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    settings: EvalSettings | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate on ``benchmarks``; the backend is built from ``model`` only if something is left to generate.

    Saved responses are reused only when ``<benchmark>.meta.json`` matches this run (model, backend,
    sampling, MMMU parser, benchmark source); ``overwrite`` discards them instead of refusing."""
    settings = settings or EvalSettings(sampling=SamplingParams())
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = files or {}
    unknown = set(files) - set(benchmarks)
    if unknown:
        raise ValueError(f"--benchmark-file given for {sorted(unknown)}, which --benchmarks does not list")
    report: dict[str, Any] = {
        "model": model,
        "profile": settings.profile,
        "sampling": asdict(settings.sampling),
        "num_samples": settings.num_samples,
        "mmmu_parser": "reasoning" if settings.mmmu_reasoning else "official",
        "benchmarks": {},
    }
    backend_label = backend_name if backend is None else type(backend).__name__
    for name in benchmarks:
        items = load_items(name, files.get(name), data_dir=data_dir, limit=limit)
        responses_path = output_dir / f"{name}.responses.jsonl"
        source = benchmark_source(name, files.get(name), data_dir)
        check_resume(
            responses_path, run_meta(name, model, backend_label, settings, source), overwrite=overwrite
        )
        if backend is None and len(read_responses(responses_path).keys() & {i.id for i in items}) < len(
            items
        ):
            if model is None:
                raise ValueError(
                    "run_eval: responses are missing and neither a backend nor a model was given"
                )

            # before a model loads or a row generates: rows its family cannot take (PaliGemma, text only)
            check_checkpoint_family(model, [item.row for item in items], where=f"eval {name} (model {model})")
            backend = make_backend(backend_name, model, **build_backend_kwargs(backend_name, settings))
        saved = (
            generate_missing(items, responses_path, backend, settings)
            if backend
            else read_responses(responses_path)
        )
        # one tick per scored response: items x samples
        with tqdm(total=len(items) * settings.num_samples, desc=f"{name}: score", unit="answer") as bar:
            result = score_records(
                name,
                [saved[item.id] for item in items],
                mmmu_reasoning=settings.mmmu_reasoning,
                timeout_s=settings.score_timeout_s,
                progress=bar.update,
            )
        write_atomic(output_dir / f"{name}.json", json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        report["benchmarks"][name] = result.to_dict(with_items=False)
        logger.info("%s", result.summary_line())
    accuracies = [b["accuracy"] for b in report["benchmarks"].values()]
    report["average_accuracy"] = sum(accuracies) / len(accuracies) if accuracies else 0.0
    write_atomic(output_dir / "report.json", json.dumps(report, indent=2, ensure_ascii=False))
    return report
