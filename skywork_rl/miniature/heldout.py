"""Held-out accuracy: how often a model's answer to problems it never trained on is right.

One measure for every place that asks whether a stage made the model better (the benchmarks, and
each training stage of a pipeline): generate completions for each held-out row through the project's
generation layer (`skywork_rl.generation`) and score them with the training reward's own checker
(`skywork_rl.rewards.accuracy`, strict: only the boxed answer after ``</think>`` counts).

Two protocols: greedy, one answer per row (the default), or R1V3's evaluation protocol, sampling at
temperature 1.0 and averaging the accuracy of k samples per row (avg@k; the paper uses k = 5). They
measure different things: RL sharpens the sampling distribution, which avg@k sees, while a greedy
answer can stay put (measured on the miniature: SFT greedy 0.52 / avg@4 0.22, GRPO after it greedy
0.47 / avg@4 0.40). Both are a property of the weights: the sampled protocol uses fixed seeds.

An answer the scorer could not judge (deadline, crashed worker) is not counted as wrong: the
measurement fails with `HeldoutScoringError` instead, because a silent 0 would understate the
model and the comparison the number exists for.

    python -m skywork_rl.miniature.heldout --model outputs/tiny/grpo --data outputs/tiny/heldout
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.errors import SkyworkError, report_error
from skywork_rl.generation.protocol import GenerationBackend, SamplingParams
from skywork_rl.generation.transformers_backend import TransformersBackend
from skywork_rl.records.atomic import write_atomic
from skywork_rl.rewards.accuracy import score_accuracy_detailed


class HeldoutScoringError(SkyworkError):
    """Some held-out answers could not be scored, so no accuracy is reported."""


# Per-answer deadlines of held-out scoring, both enforced by the scoring pool (`skywork_rl.rewards.pool`:
# a soft timer, then the worker is killed a second later). The first is the training reward's own; the
# answers that missed it (a worker starved on a loaded machine, or an answer no checker can judge, like
# a power tower) are scored once more under the second, after which they fail the measurement. So an
# unjudgeable answer costs at most ~37 s of one worker, and the measurement never hangs.
SCORE_TIMEOUT_S = 5.0
RETRY_TIMEOUT_S = 30.0


@dataclass
class HeldoutArguments:
    """Recipe group `heldout:` — held-out accuracy of the stage's model, recorded in `stage.json`.

    Off unless `data` is set (paper recipes evaluate with `skywork-rl eval` instead). With it, the
    stage records ``heldout/accuracy`` (and per task) of the model it saved, and with `measure_start`
    also ``heldout/start_accuracy`` of the model it started from (the pipeline's "base" point).
    """

    data: str | None = field(
        default=None, metadata={"help": "Held-out rows with `solution` (any data.train form); unset: off."}
    )
    num_examples: int = field(default=0, metadata={"help": "Evaluate the first N rows (0: all)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Generation length."})
    temperature: float = field(
        default=0.0,
        metadata={"help": "0: greedy, one answer per row. > 0: sample (R1V3 evaluates at 1.0 with avg@5)."},
    )
    num_samples: int = field(
        default=1,
        metadata={"help": "Samples per row when temperature > 0; accuracy is their mean (avg@k)."},
    )
    batch_size: int = field(default=32, metadata={"help": "Prompts generated per batch."})
    measure_start: bool = field(
        default=False, metadata={"help": "Also measure the model before training (heldout/start_accuracy)."}
    )

    def __post_init__(self) -> None:
        if self.num_examples < 0 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError(
                "heldout: num_examples must be >= 0, max_new_tokens and batch_size >= 1 "
                f"(got {self.num_examples}, {self.max_new_tokens}, {self.batch_size})"
            )
        if self.temperature < 0 or self.num_samples < 1:
            raise ValueError(
                f"heldout: temperature must be >= 0 and num_samples >= 1 (got {self.temperature}, "
                f"{self.num_samples})"
            )
        if self.num_samples > 1 and self.temperature == 0:
            raise ValueError(
                f"heldout: num_samples {self.num_samples} with temperature 0 would score the same greedy "
                "answer several times; set heldout.temperature (R1V3: 1.0) or num_samples: 1"
            )

    @property
    def sampling(self) -> SamplingParams:
        """The generation settings this group names (greedy at temperature 0)."""
        return SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature)

    def rows(self) -> list[dict[str, Any]]:
        """The held-out rows this group names (the first `num_examples`)."""
        dataset = load_stage_dataset(self.data, key="heldout.data")
        if "solution" not in dataset.column_names:
            raise ValueError(
                f"heldout.data {self.data!r} has no 'solution' column (columns: {dataset.column_names}); "
                "held-out rows need their gold answer"
            )
        if self.num_examples:
            dataset = dataset.select(range(min(self.num_examples, len(dataset))))
        return list(dataset)

    def measure(
        self, model: Any, processor: Any, rows: Sequence[dict[str, Any]], prefix: str
    ) -> dict[str, float]:
        """`heldout_result` of `model` as flat metrics under `prefix` (see `HeldoutResult.as_metrics`)."""
        result = heldout_result(
            model,
            processor,
            rows,
            sampling=self.sampling,
            num_samples=self.num_samples,
            batch_size=self.batch_size,
        )
        return result.as_metrics(prefix)


@dataclass
class HeldoutResult:
    """Accuracy over the rows (the mean over samples with several per row), per ``source`` (task) too,
    and the completions it was computed from."""

    accuracy: float
    num_rows: int
    samples_per_row: int = 1
    per_source: dict[str, float] = field(default_factory=dict)
    no_answer: int = 0  # completions without an extractable final answer (scored wrong)
    completions: list[str] = field(default_factory=list)
    temperature: float = 0.0  # the protocol: 0 greedy, else sampled (samples_per_row per row)
    chance_accuracy: float | None = None  # see `chance_accuracy`

    def as_metrics(self, prefix: str = "heldout/") -> dict[str, float]:
        """Flat metrics for `stage.json` / a report: ``heldout/accuracy``, ``heldout/<source>/accuracy``
        (``prefix`` ``heldout/start_`` gives ``heldout/start_accuracy`` ...), and the protocol it was
        measured with (``rows``, ``samples_per_row``, ``temperature``, ``chance_accuracy``)."""
        metrics = {f"{prefix}accuracy": self.accuracy, f"{prefix}no_answer": float(self.no_answer)}
        metrics[f"{prefix}rows"] = float(self.num_rows)
        metrics[f"{prefix}samples_per_row"] = float(self.samples_per_row)
        metrics[f"{prefix}temperature"] = float(self.temperature)
        if self.chance_accuracy is not None:
            metrics[f"{prefix}chance_accuracy"] = self.chance_accuracy
        for source, value in self.per_source.items():
            metrics[f"{prefix}{source.removeprefix('synthetic/')}/accuracy"] = value
        return metrics


def chance_accuracy(rows: Sequence[dict[str, Any]]) -> float:
    """Ours: the accuracy of a model that ignores the problem and always gives its task's (``source``)
    most common gold answer in these rows; the floor a held-out accuracy must beat to mean anything
    (0.25 on a four-way choice with balanced answers, near 0 on free-form arithmetic)."""
    by_source: dict[str, dict[str, int]] = {}
    for row in rows:
        answers = by_source.setdefault(str(row.get("source", "all")), {})
        gold = " ".join(str(row.get("solution") or "").split())
        answers[gold] = answers.get(gold, 0) + 1
    return sum(max(answers.values()) for answers in by_source.values()) / max(len(rows), 1)


def evaluate_completions(
    rows: Sequence[dict[str, Any]], completions: Sequence[str], samples_per_row: int = 1
) -> HeldoutResult:
    """Score one completion per row against the row's ``solution`` (and ``choices``, if any).

    ``rows`` may repeat each row ``samples_per_row`` times in a row (avg@k); errors then name the row.
    Every answer is judged in the scoring pool's workers under a deadline (`SCORE_TIMEOUT_S`, then
    `RETRY_TIMEOUT_S` once for those that missed it), so one answer costs at most their sum plus a
    second's grace per pass; one still unjudged raises `HeldoutScoringError` naming its row.
    """
    if len(rows) != len(completions):
        raise ValueError(f"held-out accuracy: {len(rows)} rows but {len(completions)} completions")
    if not rows:
        raise ValueError("held-out accuracy: no rows to evaluate; give a non-empty held-out split")
    missing = [i for i, row in enumerate(rows) if not str(row.get("solution") or "").strip()]
    if missing:
        raise ValueError(
            f"held-out accuracy: row {missing[0]} (id {rows[missing[0]].get('id')!r}) has no 'solution'; "
            "held-out rows need their gold answer"
        )
    choices = [row.get("choices") for row in rows] if any(row.get("choices") for row in rows) else None
    solutions = [str(row["solution"]) for row in rows]
    result = score_accuracy_detailed(list(completions), solutions, choices, timeout_s=SCORE_TIMEOUT_S)
    if result.failures:
        # A worker that missed its deadline on a loaded machine says nothing about the answer: score
        # those completions once more, in the worker pool again, under the longer retry deadline.
        again = sorted(result.errors)
        retry = score_accuracy_detailed(
            [completions[i] for i in again],
            [solutions[i] for i in again],
            [choices[i] for i in again] if choices else None,
            timeout_s=RETRY_TIMEOUT_S,
        )
        for position, index in enumerate(again):
            if position in retry.errors:
                result.errors[index] = retry.errors[position]
            else:
                result.scores[index] = retry.scores[position]
                del result.errors[index]
        result.failures = len(result.errors)
        result.no_answer += retry.no_answer
    if result.failures:
        index, error = min(result.errors.items())
        row = rows[index]
        raise HeldoutScoringError(
            f"held-out accuracy: {result.failures} of {len(rows)} answers could not be scored within "
            f"{SCORE_TIMEOUT_S:g} s and then {RETRY_TIMEOUT_S:g} s; row {index // samples_per_row} "
            f"(id {row.get('id')!r}, gold {_short(solutions[index])}, answer {_short(completions[index])}): "
            f"{error}. No accuracy is reported rather than counting it wrong; fix or drop that row of the "
            "held-out data (a gold answer the checker cannot evaluate), or raise "
            "skywork_rl.miniature.heldout.RETRY_TIMEOUT_S if the machine is only very loaded"
        )
    scores = [float(s or 0.0) for s in result.scores]
    per_source: dict[str, list[float]] = {}
    for row, score in zip(rows, scores, strict=True):
        per_source.setdefault(str(row.get("source", "all")), []).append(score)
    return HeldoutResult(
        accuracy=sum(scores) / len(scores),
        num_rows=len(rows),
        per_source={k: sum(v) / len(v) for k, v in sorted(per_source.items())},
        no_answer=result.no_answer,
        completions=list(completions),
    )


def _short(text: str, keep: int = 40) -> str:
    text = str(text)
    return repr(text) if len(text) <= 2 * keep else f"{text[:keep]!r}... ({len(text)} characters)"


def evaluate_heldout(
    backend: GenerationBackend,
    rows: Sequence[dict[str, Any]],
    *,
    sampling: SamplingParams | None = None,
    num_samples: int = 1,
) -> HeldoutResult:
    """Generate `num_samples` completions per row with `backend` and `sampling` (None: the `heldout:`
    group's defaults, greedy) and score them; the accuracy is the mean over all of them (avg@k)."""
    sampling = sampling or HeldoutArguments().sampling
    if num_samples > 1 and sampling.greedy:
        raise ValueError("held-out accuracy: several samples per row need temperature > 0")
    outputs = backend.generate(list(rows), sampling=sampling, num_generations=num_samples)
    if any(len(texts) != num_samples for texts in outputs):
        raise ValueError(f"held-out accuracy: the backend did not return {num_samples} completions per row")
    repeated = [row for row in rows for _ in range(num_samples)]
    result = evaluate_completions(repeated, [text for texts in outputs for text in texts], num_samples)
    result.num_rows, result.samples_per_row = len(rows), num_samples
    result.temperature, result.chance_accuracy = sampling.temperature, chance_accuracy(rows)
    return result


def heldout_result(
    model: Any,
    processor: Any,
    rows: Sequence[dict[str, Any]],
    *,
    sampling: SamplingParams | None = None,
    num_samples: int = 1,
    batch_size: int = 32,
) -> HeldoutResult:
    """`evaluate_heldout` on `model` where it is (`sampling` and `num_samples` as there); the model
    is left in the train/eval mode it was in, and the caller's RNG state is untouched (the backend
    seeds a forked generator)."""
    was_training = model.training
    try:
        backend = TransformersBackend(
            model, processor, batch_size=batch_size, device=str(next(model.parameters()).device)
        )
        return evaluate_heldout(backend, rows, sampling=sampling, num_samples=num_samples)
    finally:
        model.train(was_training)


def heldout_accuracy(model: Any, processor: Any, rows: Sequence[dict[str, Any]], **kwargs: Any) -> float:
    """The accuracy of `heldout_result` (same keyword arguments)."""
    return heldout_result(model, processor, rows, **kwargs).accuracy


def main(argv: list[str] | None = None) -> int:
    """Evaluate a checkpoint on a held-out dataset folder and print (or write) the result."""
    parser = argparse.ArgumentParser(
        prog="python -m skywork_rl.miniature.heldout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", required=True, help="checkpoint folder or hub id")
    parser.add_argument("--data", required=True, help="held-out rows (save_to_disk folder or data file)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy; R1V3 evaluates at 1.0")
    parser.add_argument(
        "--num-samples", type=int, default=1, help="samples per row (avg@k), with temperature"
    )
    parser.add_argument("--out", default=None, help="write the result (without completions) as JSON here")
    args = parser.parse_args(argv)

    from skywork_rl.families.parts import load_model_and_processor  # defers torch

    dataset = load_stage_dataset(args.data, key="--data")
    if args.limit is not None:
        dataset = dataset.select(range(min(args.limit, len(dataset))))
    model, processor = load_model_and_processor(args.model)
    result = heldout_result(
        model,
        processor,
        list(dataset),
        sampling=SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
        num_samples=args.num_samples,
        batch_size=args.batch_size,
    )
    summary = {k: v for k, v in asdict(result).items() if k != "completions"}
    text = json.dumps(summary, indent=2)
    if args.out:
        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SkyworkError as exc:  # one `error:` line (the traceback with --debug / SKYWORK_RL_DEBUG=1)
        code = report_error(exc)
    raise SystemExit(code)
