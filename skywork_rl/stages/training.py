"""The training stages' one skeleton (`TrainingStage`) and what it does around a TRL trainer: resume, train, save, report.

Every training stage runs the same steps: load model + processor by recipe (`model:`), load the data
(`data:`), build its trainer, attach the `monitor:` callbacks, train (resuming the newest complete
checkpoint), save model + processor, and collect the final metrics `stage.json` records. A stage
writes only `build_trainer`; the other steps have defaults a stage overrides where it differs.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from skywork_rl.data.image_rows import raise_for_undecodable_images
from skywork_rl.data.loading import load_train_eval
from skywork_rl.families.capabilities import check_family_capabilities, data_needs
from skywork_rl.miniature.heldout import HeldoutScoringError
from skywork_rl.records import TRAINER_STATE_FILE
from skywork_rl.stages.base import Stage
from skywork_rl.stages.rehearsal import RehearsalError, get_dotted
from skywork_rl.trainers.params import count_trainable

logger = logging.getLogger("skywork_rl")

# Metrics the `monitor:` callbacks log; their last values go into stage.json for checkpoint choice.
_MONITOR_PREFIXES = ("critical_entropy/", "eval/")
# What the closing report shows of the monitors, for every training stage that runs them.
MONITOR_REPORT_KEYS = ("final_critical_entropy/mean", "heldout/accuracy")


class TrainingStage(Stage):
    """A stage that trains with a TRL trainer; subclasses write `build_trainer` (see the module doc).

    Class settings: `required_columns` (the data must have them: the error names the recipe key and
    column), `trainer_columns` (the only columns passed to the trainer, when present: its collator
    would trip over `solution`, `source` ...), `logged_keys` (logged metrics whose last value is
    stored as ``final_<key>``).
    """

    required_columns: ClassVar[tuple[str, ...]] = ()
    trainer_columns: ClassVar[tuple[str, ...] | None] = None
    logged_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def rehearsal_substitutions(cls, stage_id: str, config: dict[str, Any], rehearsal: Any) -> dict[str, Any]:
        """The policy, the verifier and the reward model each become a tiny stand-in of their kind
        (`skywork_rl.runner.rehearsal_models`); the training data must come from the pipeline."""
        data = get_dotted(config, "data.train")
        if data and not rehearsal.is_internal(data):
            raise RehearsalError(
                f"stage {stage_id}: data.train {data!r} is not made by the pipeline, and a rehearsal has stand-ins "
                "only for what a load-data stage reads; load it with a load-data stage and chain its output"
            )
        return {
            **rehearsal.model_substitution(config, "model.name_or_path", "policy"),
            **rehearsal.model_substitution(config, "rewards.verifier_model", "verifier"),
            **rehearsal.model_substitution(config, "rewards.reward_model", "reward_model"),
        }

    def setup(self) -> None:
        """Checks and set-up that need no model (run first, so a bad recipe fails before a long load)."""

    def load_model(self) -> tuple[Any, Any]:
        """The model (with the recipe's trainable parts) and its processor."""
        from skywork_rl.families.parts import load_from_args  # defers torch

        return load_from_args(self.config.model)

    def load_data(self) -> tuple[Any, Any]:
        """Train and (optional) eval datasets, checked for `required_columns`, cut to `trainer_columns`."""
        train, evaluation = load_train_eval(self.config.data, self.required_columns)
        if self.trainer_columns is None:
            return train, evaluation
        keep = [c for c in self.trainer_columns if c in train.column_names]
        train = train.select_columns(keep)
        if evaluation is not None:
            evaluation = evaluation.select_columns([c for c in keep if c in evaluation.column_names])
        return train, evaluation

    def data_locations(self) -> dict[str, tuple[str, str]]:
        """The recipe's data keys and their (location, split), for errors that name rows."""
        data = self.config.data
        places = {"data.train": (data.train, data.train_split)}
        if data.eval:
            places["data.eval"] = (data.eval, data.eval_split)
        return places

    def needed_capabilities(self, train: Any, evaluation: Any) -> list[str]:
        """What this run needs of the model's family (`skywork_rl.families.capabilities`): what its rows need
        (a chat template, prompts without an image, several images) and `training.assistant_only_loss`."""
        needs = [*data_needs(train), *data_needs(evaluation)]
        if getattr(self.config.training, "assistant_only_loss", False):
            needs.append("assistant_only_loss")
        return list(dict.fromkeys(needs))

    def check_family(self, model: Any, processor: Any, train: Any, evaluation: Any) -> None:
        """Refuse, in one line and before the trainer is built, what the model's family cannot do."""
        needs = self.needed_capabilities(train, evaluation)
        where = f"stage {self.name}"
        check_family_capabilities(model.config.model_type, needs, where=where, processor=processor)

    @abstractmethod
    def build_trainer(self, model: Any, processor: Any, train: Any, evaluation: Any) -> Any:
        """The stage's TRL trainer, built with `self.config.training` as its args."""

    def stage_metrics(self, trainer: Any) -> dict[str, float]:
        """Metrics of this stage beyond the common ones (called after training)."""
        return {}

    def run(self) -> dict[str, float]:
        from skywork_rl.callbacks.config import attach_monitors  # defers transformers

        self.setup()
        heldout = getattr(self.config, "heldout", None)
        heldout_rows = heldout.rows() if heldout is not None and heldout.data else None
        model, processor = self.load_model()
        train, evaluation = self.load_data()
        self.check_family(model, processor, train, evaluation)
        start: dict[str, float] = {}
        if heldout_rows is not None and heldout.measure_start:
            start = heldout.measure(model, processor, heldout_rows, "heldout/start_")
        trainer = self.build_trainer(model, processor, train, evaluation)
        attach_monitors(trainer, self.config.monitor, train)
        resume = checkpoint_to_resume(trainer)
        start_step = _checkpoint_step(resume)
        # What this part of the run did, for stage.json's `parts` (`run_stage`), recorded even if it fails.
        self.run_part = {"resumed_from": resume, "from_step": start_step}
        try:
            metrics = train_and_save(trainer, processor, resume=resume)
        except Exception as exc:  # a corrupt image surfaces here, when the data loader decodes it
            raise_for_undecodable_images(exc, self.data_locations())
            raise
        finally:  # a stopped run (an exception, SIGTERM) records how far it got too
            self.run_part.update(
                to_step=trainer.state.global_step, **part_tokens(trainer.state.log_history, start_step)
            )
        self.run_part["train_runtime"] = metrics.get("train_runtime")
        metrics.update(final_logged(trainer.state.log_history, self.logged_keys))
        metrics.update(count_trainable(model))
        metrics.update(self.stage_metrics(trainer))
        if heldout_rows is not None:
            # The saved model, on problems no training split holds (`heldout:`; skywork_rl/miniature/heldout.py).
            metrics.update(start)
            try:
                metrics.update(heldout.measure(trainer.model, processor, heldout_rows, "heldout/"))
            except HeldoutScoringError as error:
                # The stage fails (stage.json: failed, with this reason); the model it trained stays saved.
                raise HeldoutScoringError(
                    f"{error} (training finished and the trained model is saved in {self.output_dir}; "
                    "only its held-out measurement failed)"
                ) from error
        return metrics


def resolve_resume(
    output_dir: str | Path, resume: str | bool | None, required: Sequence[str] = (TRAINER_STATE_FILE,)
) -> str | None:
    """Map the recipe's `resume_from_checkpoint` to what `Trainer.train` takes.

    ``auto`` (the pipeline's default) resumes from the newest complete `checkpoint-*` in the output
    folder when there is one and starts fresh otherwise, so re-running a killed pipeline continues
    it. `required` names the files a complete checkpoint holds (the trainer's `checkpoint_files()`).
    """
    if resume in (None, False, "", "false", "False"):
        return None
    if resume in ("auto", True, "true", "True"):
        last = last_complete_checkpoint(output_dir, required)
        if last is None and resume == "auto":
            if any(Path(output_dir).glob("checkpoint-*")):
                logger.warning("%s: no complete checkpoint to resume; training starts fresh", output_dir)
            return None
        if last is None:
            raise FileNotFoundError(
                f"training.resume_from_checkpoint: no complete checkpoint-* folder in {output_dir}"
            )
        logger.info("resuming from %s", last)
        return last
    folder = Path(str(resume))
    if not folder.is_dir():
        raise FileNotFoundError(f"training.resume_from_checkpoint: no such checkpoint folder {resume!r}")
    absent = [name for name in required if not (folder / name).is_file()]
    if absent:
        raise FileNotFoundError(
            f"training.resume_from_checkpoint: {resume} lacks {absent} (cut off while saving, saved with "
            "save_only_model, or by a run with other settings); give a complete checkpoint or null to start fresh"
        )
    return str(folder)


def last_complete_checkpoint(
    output_dir: str | Path, required: Sequence[str] = (TRAINER_STATE_FILE,)
) -> str | None:
    """The newest `checkpoint-N` holding every `required` file, or None.

    A checkpoint is written weights, optimizer, RNG and our trainers' own state (every process), then
    `trainer_state.json` (see `skywork_rl.trainers.resume`); a folder missing a file was cut off
    mid-save (a kill during a long ZeRO-3 save) or written by a run with other settings, and resuming
    it would fail or be wrong although the previous checkpoint is intact.
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    numbered = []
    for path in folder.glob("checkpoint-*"):
        suffix = path.name.removeprefix("checkpoint-")
        if path.is_dir() and suffix.isdigit():
            numbered.append((int(suffix), path))
    for _, path in sorted(numbered, reverse=True):
        absent = [name for name in required if not (path / name).is_file()]
        if not absent:
            return str(path)
        logger.warning(
            "skipping %s: it lacks %s (the save was interrupted, save_only_model, or other settings)",
            path,
            absent,
        )
    return None


def checkpoint_to_resume(trainer: Any) -> str | None:
    """The checkpoint `trainer` resumes from (`resolve_resume` of its args), None to start fresh."""
    args = trainer.args
    required = trainer.checkpoint_files() if hasattr(trainer, "checkpoint_files") else (TRAINER_STATE_FILE,)
    return resolve_resume(args.output_dir, args.resume_from_checkpoint, required)


def _checkpoint_step(checkpoint: str | None) -> int:
    """The global step a checkpoint was saved at (0: no checkpoint), from its trainer state."""
    if checkpoint is None:
        return 0
    import json

    try:
        return int(json.loads((Path(checkpoint) / TRAINER_STATE_FILE).read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        suffix = Path(checkpoint).name.rsplit("-", 1)[-1]
        return int(suffix) if suffix.isdigit() else 0


def part_tokens(history: list[dict[str, Any]], start_step: int) -> dict[str, float]:
    """``num_tokens`` (TRL's count of tokens trained on) of the part of a run after `start_step`.

    A resumed trainer's log history holds the earlier parts' entries too. Some trainers restore their
    counter from the checkpoint (GRPO: cumulative), others restart it at 0 (SFT): the part's tokens are
    the last value less the value at the resume point when the counter went on, the last value when it
    restarted. Empty when the trainer logs no ``num_tokens``."""
    before = [h["num_tokens"] for h in history if "num_tokens" in h and h.get("step", 0) <= start_step]
    after = [h["num_tokens"] for h in history if "num_tokens" in h and h.get("step", 0) > start_step]
    if not after:
        return {}
    last, first = float(after[-1]), float(after[0])
    carried = float(before[-1]) if before and first >= float(before[-1]) else 0.0
    return {"num_tokens": last - carried}


def train_and_save(trainer: Any, processor: Any = None, resume: Any = "resolve") -> dict[str, float]:
    """Train (resuming from `resume`, by default `checkpoint_to_resume`), save model + processor to
    `output_dir`, return final metrics."""
    args = trainer.args
    if resume == "resolve":
        resume = checkpoint_to_resume(trainer)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(args.output_dir)
    if processor is not None and trainer.accelerator.is_main_process:
        processor.save_pretrained(args.output_dir)
    metrics = dict(result.metrics)
    history = [h for h in trainer.state.log_history if "loss" in h]
    if history:
        metrics["first_loss"] = history[0]["loss"]
        metrics["final_loss"] = history[-1]["loss"]
    metrics["global_step"] = trainer.state.global_step
    metrics.update(final_monitor_values(trainer.state.log_history))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    return metrics


def final_logged(history: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """The last logged value of each key (as `final_<key>`), for the stage's metrics."""
    found: dict[str, float] = {}
    for entry in history:
        for key in keys:
            if key in entry and entry[key] is not None:
                found[f"final_{key}"] = float(entry[key])
    return found


def final_monitor_values(history: list[dict[str, Any]]) -> dict[str, float]:
    """The last logged value of each monitor metric, as `final_<name>`."""
    found: dict[str, float] = {}
    for entry in history:
        for key, value in entry.items():
            if key.startswith(_MONITOR_PREFIXES) and isinstance(value, (int, float)):
                found[f"final_{key}"] = float(value)
    return found
