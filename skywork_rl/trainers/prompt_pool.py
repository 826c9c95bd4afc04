"""R1V2's offline use of the Selective Sample Buffer: the "filtered prompt pool".

R1V2 keeps, besides the online buffer, the prompts whose groups carried non-zero advantage as the
prompt pool of later RL. With `training.save_prompt_pool: true` the GRPO trainer counts, for every
train row, the generations in which its group was informative (at least one rollout with |advantage|
above `ssb_advantage_threshold` and a token in the loss: the buffer's own test), and the GRPO stage
writes those rows, with the count as the int column `informative_groups`, to
`<output_dir>/prompt_pool` (a `save_to_disk` folder a later stage reads with `data.train`).

Rows are identified by their index in the train dataset: the trainer adds it as a column
(`POOL_ROW_COLUMN`) that it takes off again before TRL sees a batch, so reward functions never get
it. A group may straddle processes (TRL only asks the global batch to hold whole groups), so every
process gathers (row, informative) of the whole generation batch and counts it the same way: the
counts are equal on all processes, and each checkpoint holds them (`PROMPT_POOL_FILE`), so a resumed
run ends with the counts of an uninterrupted one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from skywork_rl.records.atomic import atomic_folder, save_atomic
from skywork_rl.trainers.grpo_rows import informative_samples
from skywork_rl.trainers.init_arguments import bind_trainer_arguments

POOL_ROW_COLUMN = "_skywork_row"
POOL_COUNT_COLUMN = "informative_groups"
PROMPT_POOL_FILE = "grpo_prompt_pool_rank{rank}.pt"


def with_row_index(dataset: Any) -> Any:
    """`dataset` plus the column of its row indices (what the pool counts by)."""
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        raise ValueError(
            f"training.save_prompt_pool needs an indexable datasets.Dataset as train data, got "
            f"{type(dataset).__name__}; save the stream to disk first or set save_prompt_pool: false"
        )
    if POOL_ROW_COLUMN in dataset.column_names:
        raise ValueError(f"train data has a column {POOL_ROW_COLUMN!r}, which the prompt pool reserves")
    return dataset.add_column(POOL_ROW_COLUMN, list(range(len(dataset))))


def count_informative_groups(
    counts: dict[int, int], rows: list[int], informative: list[bool]
) -> dict[int, int]:
    """Add one to the count of each row whose group (its rollouts in one generation) had an informative one.

    `rows` / `informative` cover the whole generation batch, all processes: a row index appears once
    per rollout of its group, and only in one group per generation (TRL's sampler draws distinct
    prompts for a generation batch).
    """
    carried: dict[int, bool] = {}
    for row, flag in zip(rows, informative, strict=True):
        carried[row] = carried.get(row, False) or flag
    for row, flag in carried.items():
        if flag:
            counts[row] = counts.get(row, 0) + 1
    return counts


def write_prompt_pool(train: Any, counts: dict[int, int], folder: str | Path) -> int:
    """Save the rows of `train` named in `counts` plus `informative_groups` to `folder`; returns the row count.

    Written to a temporary folder and renamed into place: the folder is complete or absent. A count
    column the rows already hold (a pool made from a pool) is replaced by this run's counts.
    """
    from datasets import Value

    if POOL_COUNT_COLUMN in train.column_names:
        train = train.remove_columns(POOL_COUNT_COLUMN)
    # The column goes onto every row before the selection: `datasets` cannot add one to zero rows.
    every = [counts.get(i, 0) for i in range(len(train))]
    rows = sorted(counts)
    pool = train.add_column(POOL_COUNT_COLUMN, every, feature=Value("int64")).select(rows)
    with atomic_folder(folder) as tmp:
        # `datasets` writes zero rows as zero shards, which it then cannot load: one shard at least.
        pool.save_to_disk(str(tmp), num_shards=1 if len(pool) == 0 else None)
    return len(rows)


class PromptPoolMixin:
    """Counts informative groups per train row when `args.save_prompt_pool` (see the module doc)."""

    args: Any
    accelerator: Any
    model: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = bind_trainer_arguments(self, args, kwargs)
        if getattr(bound.arguments.get("args"), "save_prompt_pool", False):
            bound.arguments["train_dataset"] = with_row_index(bound.arguments.get("train_dataset"))
        super().__init__(*bound.args[1:], **bound.kwargs)
        self.prompt_pool_counts: dict[int, int] = {}

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [x.pop(POOL_ROW_COLUMN) for x in inputs] if POOL_ROW_COLUMN in inputs[0] else None
        output = super()._generate_and_score_completions(inputs)  # type: ignore[misc]
        if rows is not None and self.model.training:
            informative = informative_samples(output, self.args.ssb_advantage_threshold)
            local = torch.stack([torch.tensor(rows, device=informative.device), informative.long()], dim=1)
            everything = self.accelerator.gather(local).tolist()
            count_informative_groups(
                self.prompt_pool_counts, [r for r, _ in everything], [bool(f) for _, f in everything]
            )
        return output

    def resume_state_files(self) -> list[str]:
        files = super().resume_state_files()  # type: ignore[misc]
        return [*files, PROMPT_POOL_FILE] if self.args.save_prompt_pool else files

    def save_resume_state(self, folder: str) -> None:
        super().save_resume_state(folder)  # type: ignore[misc]
        if self.args.save_prompt_pool:
            path = os.path.join(folder, PROMPT_POOL_FILE.format(rank=self.accelerator.process_index))
            save_atomic(torch.save, {"counts": dict(self.prompt_pool_counts)}, path)

    def load_resume_state(self, folder: str) -> None:
        super().load_resume_state(folder)  # type: ignore[misc]
        if self.args.save_prompt_pool:
            path = os.path.join(folder, PROMPT_POOL_FILE.format(rank=self.accelerator.process_index))
            state = torch.load(path, weights_only=True)
            self.prompt_pool_counts = {int(k): int(v) for k, v in state["counts"].items()}
