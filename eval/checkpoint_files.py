"""A checkpoint's model files, and putting them in another folder so that it loads as that model.

A trainer's ``checkpoint-N`` folder holds the model (what ``save_pretrained`` writes: config, weights,
processor and tokenizer files, a checkpoint's own modelling code) next to the trainer's resume state
(optimizer, scheduler, RNG, ``trainer_state.json``, per-rank buffers, DeepSpeed partitions). The
`select` stage puts the chosen checkpoint's model files into its own output folder so that the next
stage loads that folder by path as the chosen model. Files are hard-linked (no copy of 77 GB of
weights on the same file system) or copied where a hard link cannot be made; never symlinked, since a
link would dangle once `save_total_limit` rotates the checkpoint away. A hard link shares the file:
the trainers never rewrite a saved checkpoint in place (they write new ``checkpoint-N`` folders, and
a forced re-run removes the old ones before it saves), so the selection stays as it was chosen.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import shutil
from pathlib import Path

from skywork_rl.errors import SkyworkError

# What `save_pretrained` of a model, its processor and tokenizer writes (transformers 5), and a
# remote-code checkpoint's own modules. Anything else in a checkpoint is trainer state.
MODEL_FILE_PATTERNS: tuple[str, ...] = (
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model*.bin.index.json",
    "tokenizer*",
    "vocab.*",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "*.model",
    "*.tiktoken",
    "*processor_config.json",
    "chat_template.*",
    "*.py",
)
# Trainer state that matches a pattern above (DeepSpeed writes its own script into checkpoints).
TRAINER_FILES: tuple[str, ...] = ("zero_to_fp32.py", "training_args.bin")


class CheckpointFilesError(SkyworkError):
    """A checkpoint does not hold a loadable model (weights or config missing)."""


def model_files(checkpoint: str | Path) -> list[Path]:
    """The model files of `checkpoint` (sorted), or `CheckpointFilesError` naming what is missing."""
    folder = Path(checkpoint)
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and any(fnmatch.fnmatch(p.name, pattern) for pattern in MODEL_FILE_PATTERNS)
        and p.name not in TRAINER_FILES
    )
    names = {p.name for p in files}
    if "config.json" not in names:
        raise CheckpointFilesError(f"{folder}: no config.json, so it is not a saved model")
    missing = _missing_shards(folder, names)
    if missing:
        raise CheckpointFilesError(
            f"{folder}: the weight index lists {missing[0]} (and {len(missing) - 1} more) that are not "
            "there: the save was cut off; choose another checkpoint"
        )
    if not any(n.endswith((".safetensors", ".bin")) for n in names):
        raise CheckpointFilesError(
            f"{folder}: no weights (*.safetensors or pytorch_model*.bin); a DeepSpeed ZeRO-3 run saves them "
            "only with zero3_save_16bit_model: true in its accelerate config"
        )
    return files


def _missing_shards(folder: Path, names: set[str]) -> list[str]:
    missing: list[str] = []
    for index in sorted(n for n in names if n.endswith(".index.json")):
        weight_map = json.loads((folder / index).read_text()).get("weight_map", {})
        missing += sorted({shard for shard in weight_map.values() if shard not in names})
    return missing


def place_model(checkpoint: str | Path, destination: str | Path) -> list[str]:
    """Hard-link (or copy) the model files of `checkpoint` into `destination`; returns their names.

    A file of the same name already in `destination` is replaced, so a folder that held another
    selection holds this one's files afterwards; the caller removes names it no longer needs.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    placed = []
    for source in model_files(checkpoint):
        target = destination / source.name
        tmp = destination / f".{source.name}.placing"
        tmp.unlink(missing_ok=True)
        _link_or_copy(source, tmp)
        os.replace(tmp, target)
        placed.append(source.name)
    return placed


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        shutil.copy2(source, target)
