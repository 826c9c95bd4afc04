"""`skywork-rl eval`: evaluate a checkpoint on benchmarks, or score saved responses without a model.

skywork-rl eval --model ckpt/rl --benchmarks mmmu,mathvista --data-dir data/bench --limit 100
skywork-rl eval --model ckpt/rl --profile skywork-release --benchmarks olympiadbench
skywork-rl eval --config recipes/skywork-r1v3/eval.yaml --model ckpt/rl
skywork-rl eval score --benchmark mmmu --predictions example_outputs/qwen_vl --output scores.json

A failure the user can fix (a missing or malformed predictions file, an unknown benchmark) is a
`skywork_rl.errors.SkyworkError` naming the file and the fix: printed as one line, exit code 2
(``SKYWORK_RL_DEBUG=1`` re-raises it with its traceback).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Literal

from jsonargparse import ActionConfigFile, ArgumentParser

from eval.benchmarks import get_benchmark, score_records
from eval.deadline import DEFAULT_TIMEOUT_S
from eval.profiles import DEFAULT_PROFILE, PROFILES, resolve_sampling
from eval.runner import EvalSettings, ResumeMismatchError, read_responses, run_eval
from eval.scoring import BenchmarkResult, summary_line
from skywork_rl.errors import DataError, SkyworkError
from skywork_rl.generation.protocol import SamplingParams
from skywork_rl.records.atomic import write_atomic
from skywork_rl.scorers import benchmark_names

logger = logging.getLogger("skywork_rl.eval")

# Literal types (not ``choices=``, which jsonargparse prints as "type: <function <lambda>>")
MmmuParser = Literal["reasoning", "official"]
ProfileName = Literal[tuple(PROFILES)]  # type: ignore[valid-type]


def add_mmmu_parser_argument(parser: ArgumentParser) -> None:
    """One flag, one default for `eval` and `eval score`, so re-scoring a run's responses reproduces its report."""
    parser.add_argument(
        "--mmmu-parser",
        type=MmmuParser,
        default="reasoning",
        help="MMMU answer parser: reasoning (a \\boxed{} answer after </think> first; otherwise "
        "exactly the official rules) or official (as upstream's main_parse_and_eval.py)",
    )


def add_score_timeout_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--score-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds one answer comparison may take; past it the item is scored wrong and counted "
        "in the report's failures (a pathological answer never hangs scoring)",
    )


def build_run_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="skywork-rl eval",
        description="Evaluate a checkpoint: generate (resumable), score with each benchmark's official rules, "
        "write report.json, <benchmark>.json and every response to <benchmark>.responses.jsonl. "
        "`skywork-rl eval score --help` scores saved responses without a model.",
    )
    parser.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML with any of these options (e.g. sampling from a recipe)",
    )
    parser.add_argument("--model", type=str, required=True, help="checkpoint folder or hub id")
    parser.add_argument(
        "--benchmarks",
        type=str,
        default="mmmu",
        help=f"comma-separated, from: {', '.join(benchmark_names())}",
    )
    parser.add_argument(
        "--output-dir", type=str, default="eval_results", help="report, scores and responses go here"
    )
    parser.add_argument(
        "--data-dir",
        type=str,
        default=None,
        help="folder with <name>.jsonl/.json/.parquet or <name>/ per benchmark",
    )
    parser.add_argument(
        "--benchmark-file",
        type=str,
        nargs="+",
        default=[],
        help="NAME=PATH ...: local files in the official layouts (space-separated)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N items of each benchmark")
    parser.add_argument(
        "--backend", type=str, default="transformers", help="transformers (CPU/1 GPU) or vllm"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="transformers backend only")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="load the checkpoint's own modelling code"
    )
    parser.add_argument(
        "--backend-kwargs",
        type=str,
        default="{}",
        help='JSON object passed to the backend, e.g. \'{"tensor_parallel_size": 4, "max_model_len": 32768}\' for vllm',
    )
    parser.add_argument(
        "--save-every", type=int, default=32, help="items per saved chunk (the resume granularity)"
    )
    parser.add_argument(
        "--profile",
        type=ProfileName,
        default=DEFAULT_PROFILE,
        help="sampling of a published evaluation: r1v3 (temperature 1.0, 16384 tokens, avg@5, the "
        "paper's) or skywork-release (temperature 0, top-p 0.95, repetition penalty 1.05, 8000 tokens, "
        "Skywork's inference script); the flags below override it",
    )
    parser.add_argument(
        "--num-samples",
        type=int | None,
        default=None,
        help="k responses per item, avg@k (default: the profile's)",
    )
    parser.add_argument("--max-new-tokens", type=int | None, default=None, help="default: the profile's")
    parser.add_argument("--temperature", type=float | None, default=None, help="default: the profile's")
    parser.add_argument("--top-p", type=float | None, default=None, help="default: the profile's")
    parser.add_argument(
        "--repetition-penalty", type=float | None, default=None, help="1.0 = off (default: the profile's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    add_mmmu_parser_argument(parser)
    add_score_timeout_argument(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="discard saved responses written with other settings (model, sampling, ...) instead of refusing",
    )
    return parser


def build_score_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="skywork-rl eval score",
        description="Score saved responses without a model. MMMU accepts the official output folder "
        "(<Subject>/output.json), one JSON list of such entries, or main_eval_only's {id: parsed_pred} with "
        "--answers; every benchmark accepts our <benchmark>.responses.jsonl.",
    )
    parser.add_argument(
        "--benchmark",
        type=Literal[tuple(benchmark_names())],  # type: ignore[valid-type]
        required=True,
        help="which benchmark's rules score them",
    )
    parser.add_argument("--predictions", type=str, required=True, help="folder or file of saved responses")
    parser.add_argument(
        "--output",
        type=str,
        required=True,
        help="JSON report: accuracy, correct, total, per_item, per_subject",
    )
    parser.add_argument(
        "--answers", type=str, default=None, help="MMMU answer_dict_val.json, for {id: parsed_pred} files"
    )
    add_mmmu_parser_argument(parser)
    add_score_timeout_argument(parser)
    return parser


def _parse_files(pairs: list[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or name not in benchmark_names():
            raise SkyworkError(
                f"--benchmark-file {pair!r}: expected NAME=PATH with NAME in {', '.join(benchmark_names())}"
            )
        files[name] = path
    return files


def score_predictions(
    benchmark: str, predictions: Path, *, answers: str | None, reasoning: bool, timeout_s: float
) -> BenchmarkResult:
    """Score a predictions file or folder; every failure to read it is a DataError naming it."""
    where = f"--predictions {predictions}"
    if not predictions.exists():
        raise DataError(f"{where}: no such file or folder")
    if predictions.suffix == ".jsonl":
        try:
            records = list(read_responses(predictions).values())
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            detail = f"a record lacks {exc}" if isinstance(exc, KeyError) else str(exc)
            raise DataError(
                f"{where}: not a readable <benchmark>.responses.jsonl ({detail}); expected one JSON "
                "object per line with 'id', 'response' (or 'responses') and 'meta'"
            ) from None
        try:
            return score_records(benchmark, records, mmmu_reasoning=reasoning, timeout_s=timeout_s)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
    spec = get_benchmark(benchmark)
    if spec.score_official is None:
        raise DataError(
            f"{where}: for {benchmark}, pass the <benchmark>.responses.jsonl written by `skywork-rl eval`"
        )
    return spec.score_official(predictions, answers=answers, reasoning=reasoning, timeout_s=timeout_s)


def score_main(argv: list[str]) -> int:
    args = build_score_parser().parse_args(argv)
    predictions = Path(args.predictions)
    result = score_predictions(
        args.benchmark,
        predictions,
        answers=args.answers,
        reasoning=args.mmmu_parser == "reasoning",
        timeout_s=args.score_timeout,
    )
    if result.total == 0:
        raise DataError(
            f"--predictions {predictions}: no responses found (expected {args.benchmark}.responses.jsonl"
            + (f", {layout}" if (layout := get_benchmark(args.benchmark).official_layout) else "")
            + ")"
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    # Atomic (a crash leaves no torn report); text UTF-8 cannot encode is escaped, with a warning.
    write_atomic(args.output, json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    print(result.summary_line())
    return 0


def main(argv: list[str]) -> int:
    """Entry point for `skywork-rl eval ...` (dispatched by skywork_rl/cli.py)."""
    try:
        return score_main(argv[1:]) if argv and argv[0] == "score" else run_main(argv)
    except (SkyworkError, ResumeMismatchError) as exc:
        if os.environ.get("SKYWORK_RL_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_main(argv: list[str]) -> int:
    args = build_run_parser().parse_args(argv)
    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    unknown = [n for n in names if n not in benchmark_names()]
    if unknown:
        raise SkyworkError(
            f"--benchmarks: unknown benchmark(s) {unknown}; choose from {', '.join(benchmark_names())}"
        )
    if args.backend not in ("transformers", "vllm"):
        raise SkyworkError(f"--backend {args.backend!r}: choose transformers or vllm")
    try:
        backend_kwargs = json.loads(args.backend_kwargs)
    except json.JSONDecodeError as exc:
        raise SkyworkError(f"--backend-kwargs {args.backend_kwargs!r}: not JSON ({exc})") from None
    if not isinstance(backend_kwargs, dict):
        raise SkyworkError(f"--backend-kwargs {args.backend_kwargs!r}: expected a JSON object")
    sampling = resolve_sampling(
        args.profile,
        {
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "repetition_penalty": args.repetition_penalty,
            "num_samples": args.num_samples,
        },
    )
    if sampling["num_samples"] < 1:
        raise SkyworkError(f"--num-samples {sampling['num_samples']}: must be at least 1")
    settings = EvalSettings(
        sampling=SamplingParams(
            max_new_tokens=sampling["max_new_tokens"],
            temperature=sampling["temperature"],
            top_p=sampling["top_p"],
            seed=args.seed,
            repetition_penalty=sampling["repetition_penalty"],
        ),
        batch_size=args.batch_size,
        save_every=args.save_every,
        mmmu_reasoning=args.mmmu_parser == "reasoning",
        trust_remote_code=args.trust_remote_code,
        backend_kwargs=backend_kwargs,
        num_samples=sampling["num_samples"],
        profile=args.profile,
        score_timeout_s=args.score_timeout,
    )
    report = run_eval(
        names,
        args.output_dir,
        model=args.model,
        backend_name=args.backend,
        files=_parse_files(args.benchmark_file),
        data_dir=args.data_dir,
        limit=args.limit,
        settings=settings,
        overwrite=args.overwrite,
    )
    for result in report["benchmarks"].values():
        print(summary_line(result))
    return 0
