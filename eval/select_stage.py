"""The `select` pipeline stage: R1V3's checkpoint choice by critical-token entropy, inside the chain.

R1V3 (arXiv 2507.06167) picks its RL checkpoint by the entropy of the policy at critical reasoning
tokens ("wait", "alternatively", ...); the connector-only stage then tunes that checkpoint. This stage
measures every ``checkpoint-*`` of a training run (and the run's final model) on probe prompts with
`eval.select`'s rule (accuracy decides among high-entropy checkpoints when each has an eval report),
then hard-links the chosen checkpoint's model files into its own output folder with
``selection.json``: the folder loads by path as the chosen model, so the pipeline feeds it to the next
stage (``produces = "model"``). ``select.rule: accuracy`` ranks by eval reports alone, for a model
that never says a critical word.

    - {id: select, stage: select, config: {select: {limit: 64, num_generations: 4}}}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from eval.checkpoint_files import CheckpointFilesError, model_files, place_model
from eval.select import (
    CheckpointScore,
    NoCriticalTokens,
    SelectionError,
    checkpoint_step,
    measure_checkpoint,
    partial_accuracy_warning,
    rank_by_accuracy,
    rank_checkpoints,
    read_accuracy,
    rollout_sampling,
    selection_rule,
    write_selection_files,
)
from skywork_rl.callbacks.entropy import DEFAULT_CRITICAL_WORDS
from skywork_rl.data.loading import load_stage_dataset
from skywork_rl.records import TRAINER_STATE_FILE
from skywork_rl.stages.base import Stage

logger = logging.getLogger("skywork_rl")

SELECTION_FILE = "selection.json"


@dataclass
class SelectOptions:
    """Recipe group ``select:`` — the candidates, the probe rollouts and the rule."""

    run_dir: str = field(
        default="",
        metadata={
            "help": "A training stage's output folder: its checkpoint-* folders (and its final model, "
            "see include_final) are the candidates. In a pipeline, empty means the previous model."
        },
    )
    checkpoints: list[str] | None = field(
        default=None, metadata={"help": "More candidate folders (e.g. an earlier run's checkpoints)."}
    )
    include_final: bool = field(
        default=True,
        metadata={"help": "The run folder's final model is a candidate unless a checkpoint holds its step."},
    )
    probe_data: str = field(
        default="",
        metadata={
            "help": "Canonical prompts the candidates are rolled out on (folder, file or hub id). In a "
            "pipeline, empty means the previous dataset."
        },
    )
    probe_split: str = field(default="train", metadata={"help": "Split of probe_data."})
    limit: int = field(default=64, metadata={"help": "Probe prompts used (the first N)."})
    num_generations: int = field(default=4, metadata={"help": "Rollouts per probe prompt."})
    max_new_tokens: int = field(default=4096, metadata={"help": "Tokens per rollout."})
    temperature: float = field(default=1.0, metadata={"help": "Rollout sampling (entropy uses raw logits)."})
    top_p: float = field(default=1.0, metadata={"help": "Rollout nucleus sampling."})
    seed: int = field(default=0, metadata={"help": "Rollout seed (the same for every candidate)."})
    batch_size: int = field(default=4, metadata={"help": "Prompts per generate call."})
    words: list[str] = field(
        default_factory=lambda: list(DEFAULT_CRITICAL_WORDS),
        metadata={"help": "Critical words whose first token's entropy is measured."},
    )
    rule: Literal["entropy", "accuracy"] = field(
        default="entropy",
        metadata={
            "help": "entropy: highest critical-token entropy, or with an eval report for every candidate the "
            "most accurate of those within entropy_ratio of the best (R1V3). accuracy: eval reports alone."
        },
    )
    entropy_ratio: float = field(
        default=0.9, metadata={"help": "With accuracies: the entropy floor, as a fraction of the best."}
    )
    eval_reports: dict[str, str] | None = field(
        default=None,
        metadata={
            "help": "Candidate folder name (checkpoint-500, final) -> its `skywork-rl eval` report.json; "
            "default <candidate>/eval/report.json when it exists."
        },
    )
    dtype: str = field(default="auto", metadata={"help": "torch dtype the candidates load in."})
    device_map: str | None = field(
        default=None, metadata={"help": "transformers device_map, e.g. auto to spread a 38B over the GPUs."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Run the checkpoints' own code."})


@dataclass
class SelectOutput:
    """Recipe group ``output:``."""

    output_dir: str = field(default="outputs/select", metadata={"help": "Folder of the chosen model."})


@dataclass
class SelectConfig:
    select: SelectOptions = field(default_factory=SelectOptions)
    output: SelectOutput = field(default_factory=SelectOutput)


def _step_of(folder: Path, fallback: int) -> int:
    state = folder / TRAINER_STATE_FILE
    if state.is_file():
        return int(json.loads(state.read_text()).get("global_step", fallback))

    return checkpoint_step(str(folder), fallback)


def _final_step(run_dir: Path) -> int | None:
    record = run_dir / "stage.json"
    if record.is_file():
        step = (json.loads(record.read_text()).get("metrics") or {}).get("global_step")
        return int(step) if step is not None else None
    return None


def candidates(options: SelectOptions) -> list[tuple[str, int]]:
    """``(folder, step)`` of every candidate, in step order: the run's checkpoints, the extra folders,
    and the final model when no checkpoint holds its step. A run's checkpoint without a complete model
    (a save cut off by a kill) is skipped with a warning; a folder named in select.checkpoints must be
    complete."""
    found: list[tuple[str, int]] = []
    run = Path(options.run_dir) if options.run_dir else None
    if run is not None:
        if not run.is_dir():
            raise SelectionError(f"select.run_dir: no such folder {run}")
        for folder in run.glob("checkpoint-*"):
            suffix = folder.name.removeprefix("checkpoint-")
            if not (folder.is_dir() and suffix.isdigit()):
                continue
            try:
                model_files(folder)
            except CheckpointFilesError as exc:
                logger.warning("select: skipping %s", exc)
                continue
            found.append((str(folder), int(suffix)))
    for index, extra in enumerate(options.checkpoints or []):
        if not Path(extra).is_dir():
            raise SelectionError(f"select.checkpoints: no such folder {extra}")
        model_files(extra)
        found.append((extra, _step_of(Path(extra), index)))
    if run is not None and options.include_final and (run / "config.json").is_file():
        final = _final_step(run)
        if final is None or final not in {step for _, step in found}:
            found.append(
                (str(run), final if final is not None else max((s for _, s in found), default=0) + 1)
            )
    if not found:
        raise SelectionError(
            f"select: no candidate model in select.run_dir {options.run_dir or '(empty)'} or "
            "select.checkpoints: a candidate is a checkpoint-N folder (or the run folder) with config.json; "
            "set training.save_steps in the training stage so it keeps checkpoints"
        )
    return sorted(found, key=lambda item: item[1])


class SelectStage(Stage):
    """Pick a training run's checkpoint by critical-token entropy (R1V3) and hand it on as the model."""

    name = "select"
    config_class = SelectConfig
    produces: ClassVar[str] = "model"
    output_dir_key: ClassVar[str] = "output.output_dir"
    input_model_key: ClassVar[str | None] = "select.run_dir"
    input_data_key: ClassVar[str | None] = "select.probe_data"
    distributed: ClassVar[bool] = False  # one process; device_map spreads a large model over the GPUs
    report_keys = ("select/candidates", "select/chosen_step", "select/chosen_entropy")

    def run(self) -> dict[str, float]:
        options: SelectOptions = self.config.select
        found = candidates(options)
        self.texts: list[str] = []
        logger.info("select: %d candidates: %s", len(found), [Path(c).name for c, _ in found])
        reports = self._reports(found)
        scores = [CheckpointScore(c, step, None, 0, reports.get(c)) for c, step in found]
        if options.rule == "entropy":
            self._measure(scores)
        ranked, rule = self._rank(scores)
        return self._hand_on(ranked, rule)

    def _reports(self, found: list[tuple[str, int]]) -> dict[str, float]:
        given = dict(self.config.select.eval_reports or {})
        names = {_name(c, self.config.select.run_dir) for c, _ in found}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise SelectionError(
                f"select.eval_reports: {unknown} name no candidate; candidates are {sorted(names)}"
            )
        accuracies = {}
        for checkpoint, _ in found:
            name = _name(checkpoint, self.config.select.run_dir)
            report = Path(given.get(name, Path(checkpoint) / "eval" / "report.json"))
            if name in given and not report.is_file():
                raise SelectionError(f"select.eval_reports.{name}: no such file {report}")
            if report.is_file():
                accuracies[checkpoint] = read_accuracy(report)
        return accuracies

    def _measure(self, scores: list[Any]) -> None:
        from tqdm.auto import tqdm

        options: SelectOptions = self.config.select
        if not options.probe_data:
            raise SelectionError("select.probe_data is empty: give the prompts to roll the candidates out on")
        probe = load_stage_dataset(options.probe_data, options.probe_split, key="select.probe_data")
        rows = [probe[i] for i in range(min(options.limit, len(probe)))]
        for score in tqdm(scores, desc="select", unit="checkpoint"):
            result, texts = measure_checkpoint(
                score.checkpoint,
                rows,
                sampling=rollout_sampling(options),
                words=options.words,
                num_generations=options.num_generations,
                batch_size=options.batch_size,
                dtype=options.dtype,
                device_map=options.device_map,
                trust_remote_code=options.trust_remote_code,
            )
            score.entropy, score.critical_tokens = result.mean, result.count
            self.texts += texts
            logger.info(
                "select: %s: entropy %s over %d critical tokens", score.checkpoint, result.mean, result.count
            )

    def _rank(self, scores: list[Any]) -> tuple[list[Any], str]:
        options: SelectOptions = self.config.select
        if options.rule == "accuracy":
            return rank_by_accuracy(scores), "highest eval accuracy"
        warning = partial_accuracy_warning(scores)
        if warning:
            logger.warning(warning)
        try:
            ranked = rank_checkpoints(scores, options.entropy_ratio)
        except NoCriticalTokens:
            raise NoCriticalTokens(_no_critical_words_message(options, len(scores), self.texts)) from None
        return ranked, selection_rule(ranked, options.entropy_ratio)

    def _hand_on(self, ranked: list[Any], rule: str) -> dict[str, float]:
        """Put the chosen model's files into the output folder, then selection.json (written last:
        a folder with selection.json holds that selection's files and no other's)."""
        out = self.output_dir
        out.mkdir(parents=True, exist_ok=True)
        previous = _previous_files(out)
        (out / SELECTION_FILE).unlink(missing_ok=True)
        chosen = ranked[0]
        placed = place_model(chosen.checkpoint, out)
        for name in sorted(set(previous) - set(placed)):
            (out / name).unlink(missing_ok=True)
        selection = {
            "chosen": chosen.checkpoint,
            "step": chosen.step,
            "rule": rule,
            "critical_words": list(self.config.select.words),
            "ranking": [s.checkpoint for s in ranked],
            "model_files": placed,
        }
        write_selection_files(ranked, selection, out)
        logger.info("select: chose %s (%s); its model is now %s", chosen.checkpoint, rule, out)
        metrics = {"select/candidates": float(len(ranked)), "select/chosen_step": float(chosen.step)}
        if chosen.entropy is not None:
            metrics["select/chosen_entropy"] = float(chosen.entropy)
        if chosen.accuracy is not None:
            metrics["select/chosen_accuracy"] = float(chosen.accuracy)
        return metrics


def _name(candidate: str, run_dir: str) -> str:
    """How eval_reports names a candidate: ``final`` for the run folder itself, else its folder name."""
    if run_dir and Path(candidate).resolve() == Path(run_dir).resolve():
        return "final"
    return Path(candidate).name


def _previous_files(out: Path) -> list[str]:
    """Model files a previous selection put into `out` (to remove those this one does not replace)."""
    record = out / SELECTION_FILE
    if not record.is_file():
        return []
    return list(json.loads(record.read_text()).get("model_files", []))


def _no_critical_words_message(options: SelectOptions, candidates: int, texts: list[str]) -> str:
    """One line: the candidates never said a critical word, what they did say, and the fixes."""
    from collections import Counter

    words = Counter(w for t in texts for w in _words(t))
    common = ", ".join(w for w, _ in words.most_common(8)) or "nothing"
    return (
        f"select: none of the {candidates} candidates generated a critical word ({', '.join(options.words)}) "
        f"in {len(texts)} probe rollouts of up to {options.max_new_tokens} tokens, so entropy cannot rank "
        f"them (their most frequent words: {common}). Fix: set select.words to words this model does say, "
        "or select.rule: accuracy with an eval report per candidate, or raise select.num_generations / "
        "select.max_new_tokens / select.limit"
    )


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z]{3,}", text.lower())
