"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never a torn one.

Every file a run leaves for a later run to trust (stage records, completion markers, manifests,
rollout chunks, buffer snapshots) is written through here: to a temporary name in the same folder,
flushed, then renamed over the target (`os.replace` is atomic within one file system). A folder
(the prompt pool's `save_to_disk`) is filled under a temporary name and renamed the same way.

Text is written as UTF-8. Characters UTF-8 cannot encode (lone surrogates such as ``\udc00``, which a
model's output or a decoded byte string can hold) are written as ``\udc00`` escapes and counted in a
warning naming the file, never a crash that loses the whole report: inside a JSON string the escape
reads back as the same character.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


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


def encode_text(text: str, where: str | Path) -> tuple[bytes, int]:
    """`text` as UTF-8, with what UTF-8 cannot encode (lone surrogates) escaped as ``\\udXXX``; returns
    the bytes and how many characters were escaped (a warning names `where` when any were)."""
    try:
        return text.encode("utf-8"), 0
    except UnicodeEncodeError:
        pass
    escaped = sum(1 for ch in text if "\ud800" <= ch <= "\udfff")
    logger.warning(
        "%s: %d character(s) UTF-8 cannot encode (lone surrogates, e.g. from a model's output) written "
        "as \\uXXXX escapes",
        where,
        escaped,
    )
    return text.encode("utf-8", errors="backslashreplace"), escaped


def write_atomic(path: str | Path, data: str | bytes) -> int:
    """Write text (as UTF-8, see `encode_text`) or bytes to `path` atomically; returns how many
    characters had to be escaped (0 for bytes)."""
    escaped = 0
    if isinstance(data, str):
        data, escaped = encode_text(data, path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return escaped


def save_atomic(save: Callable[[Any, Path], Any], obj: Any, path: str | Path) -> None:
    """`save(obj, tmp)` (e.g. `torch.save`) into a temporary path, then rename it over `path`."""
    with atomic_path(path) as tmp:
        save(obj, tmp)


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """`fig.savefig` (matplotlib) into a temporary path, then rename it over `path`; the format is
    `path`'s suffix (png by default)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", **kwargs)
