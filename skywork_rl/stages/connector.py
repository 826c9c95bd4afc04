"""Connector-only alignment (R1V3, arXiv 2507.06167): after RL, train the connector alone on a balanced set.

R1V3 reports that the connector is where cross-modal alignment lives and that tuning *only* it,
after RL, on a small set balanced across domains restores the skills math-heavy RL skewed, while
the reasoning LLM (and the vision encoder) stay exactly as RL left them. The stage:

1. loads the model by recipe and freezes everything but the connector (the part registry in
   `skywork_rl.families.parts`, or the recipe's own ``model.part_patterns.connector`` regex);
2. builds a balanced mix from several domains (`skywork_rl.data.mixing`): either ``data.domains``
   (domain name -> dataset location) or the rows of ``data.train`` grouped by ``data.domain_column``
   (the canonical ``source``);
3. trains with `ConnectorOnlyTrainer` (TRL `SFTTrainer`, loss on the completion) whose optimizer is
   checked to hold only the connector, and saves a full checkpoint that loads by path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from skywork_rl.callbacks.config import MonitorArguments
from skywork_rl.data.loading import DataArguments, load_stage_dataset, load_train_eval
from skywork_rl.data.mixing import MixOptions, mix_domains
from skywork_rl.data.schema import require_columns
from skywork_rl.errors import DataError
from skywork_rl.families.parts import ModelArguments, resolve_parts
from skywork_rl.miniature.heldout import HeldoutArguments
from skywork_rl.stages.sft import SkyworkSFTConfig
from skywork_rl.stages.training import MONITOR_REPORT_KEYS, TrainingStage
from skywork_rl.trainers.connector import ConnectorOnlyTrainer
from skywork_rl.trainers.vision_batches import text_only_rows

logger = logging.getLogger("skywork_rl")

_SFT_COLUMNS = ("prompt", "completion")


@dataclass
class ConnectorModelArguments(ModelArguments):
    """`model:` as for every stage; ``trainable`` is fixed to the connector here."""

    trainable: list[str] = field(
        default_factory=lambda: ["connector"],
        metadata={
            "help": "Must be [connector] in this stage (set model.part_patterns to move the connector)."
        },
    )

    def __post_init__(self) -> None:
        if list(self.trainable) != ["connector"]:
            raise ValueError(
                f"model.trainable: the connector stage trains only [connector], got {self.trainable}; "
                "use the sft stage to train other parts"
            )


@dataclass
class ConnectorDataArguments(DataArguments):
    """`data:` plus where the domains come from."""

    domains: dict[str, str] | None = field(
        default=None,
        metadata={
            "help": "Domain name -> dataset location; when unset, data.train is split by domain_column."
        },
    )
    domain_column: str = field(
        default="source", metadata={"help": "Column naming each row's domain when data.train is one dataset."}
    )


@dataclass
class ConnectorStageConfig:
    model: ConnectorModelArguments = field(default_factory=ConnectorModelArguments)
    data: ConnectorDataArguments = field(default_factory=ConnectorDataArguments)
    mix: MixOptions = field(default_factory=MixOptions)
    training: SkyworkSFTConfig = field(
        default_factory=lambda: SkyworkSFTConfig(output_dir="outputs/connector")
    )
    monitor: MonitorArguments = field(default_factory=MonitorArguments)
    heldout: HeldoutArguments = field(default_factory=HeldoutArguments)


def load_domains(data: ConnectorDataArguments) -> dict[str, Any]:
    """The per-domain datasets the mix draws from, each checked for the SFT columns."""
    if data.domains:
        ignored = [k for k in ("max_train_samples", "shuffle_seed") if getattr(data, k) is not None]
        if ignored:
            raise ValueError(
                f"data.domains is set, so data.{ignored[0]} would be ignored; size domains with mix.caps / "
                "mix.total instead, or drop data.domains and split data.train by data.domain_column"
            )
        if data.train:  # a pipeline chains the previous data stage in; the named domains take precedence
            logger.info("connector stage: data.domains is set; data.train (%s) is not used", data.train)
        domains = {}
        for name, location in data.domains.items():
            ds = load_stage_dataset(location, data.train_split, key=f"data.domains.{name}")
            require_columns(ds.column_names, _SFT_COLUMNS, f"data.domains.{name} ({location})")
            domains[name] = ds
        return domains
    train, _ = load_train_eval(data, _SFT_COLUMNS)
    if data.domain_column not in train.column_names:
        raise ValueError(
            f"data.domain_column: {data.train} has no column {data.domain_column!r} to group domains by; "
            "set data.domains (name -> location) or data.domain_column"
        )
    values = train[data.domain_column]
    names = sorted({str(v) for v in values})
    return {name: train.select([i for i, v in enumerate(values) if str(v) == name]) for name in names}


def refuse_text_only_rows(domains: dict[str, Any], data: ConnectorDataArguments) -> None:
    """Every row must have an image: a text-only row's loss has no path to the connector (all this stage trains)."""
    for name, ds in domains.items():
        rows = text_only_rows(ds)
        if rows:
            where = (
                f"data.domains.{name} ({data.domains[name]})"
                if data.domains
                else f"data.train ({data.train})"
            )
            shown = list(ds.select(rows[:5])["id"]) if "id" in ds.column_names else rows[:5]
            raise DataError(
                f"connector stage: domain {name!r} of {where} has {len(rows)} of {len(ds)} rows without an image "
                f"(e.g. {shown}); their loss has no path to the connector, the only part this stage trains. Drop "
                "them (clean.require_images: true) or leave the domain out"
            )


class ConnectorStage(TrainingStage):
    """Connector-only SFT on a balanced multi-domain set (R1V3); every other weight stays bitwise fixed."""

    name = "connector"
    config_class = ConnectorStageConfig
    report_keys = (
        "first_loss",
        "final_loss",
        "connector/trainable_params",
        "connector/optimizer_state_bytes",
        *MONITOR_REPORT_KEYS,
    )
    trainer_columns = ("prompt", "completion", "images")

    def load_data(self) -> tuple[Any, Any]:
        """The balanced mix of the domains (its sizes go into the metrics) and the optional eval set."""
        data = self.config.data
        domains = load_domains(data)
        refuse_text_only_rows(domains, data)
        self.mixed = mix_domains(domains, self.config.mix)
        keep = [c for c in self.trainer_columns if c in self.mixed.dataset.column_names]
        evaluation = None
        if data.eval:
            evaluation = load_stage_dataset(data.eval, data.eval_split, key="data.eval")
            require_columns(evaluation.column_names, _SFT_COLUMNS, f"data.eval ({data.eval})")
            if data.max_eval_samples is not None:
                evaluation = evaluation.select(range(min(data.max_eval_samples, len(evaluation))))
            evaluation = evaluation.select_columns([c for c in keep if c in evaluation.column_names])
        return self.mixed.dataset.select_columns(keep), evaluation

    def build_trainer(self, model: Any, processor: Any, train: Any, evaluation: Any) -> Any:
        return ConnectorOnlyTrainer(
            model=model,
            args=self.config.training,
            train_dataset=train,
            eval_dataset=evaluation,
            processing_class=processor,
            connector_names=resolve_parts(model, self.config.model.part_patterns)["connector"],
        )

    def stage_metrics(self, trainer: Any) -> dict[str, float]:
        report = trainer.connector_report()
        logger.info("connector stage: %s", report)
        return {**self.mixed.as_metrics(), **report}
