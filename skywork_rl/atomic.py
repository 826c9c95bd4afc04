"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never a torn one.

Every file a run leaves for a later run to trust (stage records, completion markers, manifests,
rollout chunks, buffer snapshots) is written through here: to a temporary name in the same folder,
flushed, then renamed over the target (`os.replace` is atomic within one file system). A folder
(the prompt pool's `save_to_disk`) is filled under a temporary name and renamed the same way.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    target = Path(path)
    tmp = _temp_name(target)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder path to fill (e.g. `Dataset.save_to_disk`); on success it replaces the
    folder `path` (removed first, so a reader finds the old folder, none, or the new one, never a
    partial one), on error it is removed."""
    target = Path(path)
    tmp = _temp_name(target)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write text or bytes to `path` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


def save_atomic(save: Callable[[Any, Path], Any], obj: Any, path: str | Path) -> None:
    """`save(obj, tmp)` (e.g. `torch.save`) into a temporary path, then rename it over `path`."""
    with atomic_path(path) as tmp:
        save(obj, tmp)
