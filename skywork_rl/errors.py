"""Errors a user can act on.

A `SkyworkError` says what is wrong, where (file, key, column, path) and how to fix it, so the
command line prints its message in one line and exits non-zero instead of a traceback (which
`--debug` still shows). Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback

# `--debug` anywhere on a command line sets it; then an error prints its traceback too.
DEBUG_ENV = "SKYWORK_RL_DEBUG"


class SkyworkError(Exception):
    """A failure the user can fix from its message alone (bad recipe, missing input, refused run)."""

    exit_code = 1  # the command's exit status when this error ends it


class DataError(SkyworkError, ValueError):
    """Input data that cannot be used as asked: a missing column, an empty result, an unreadable file."""


class StorageError(SkyworkError):
    """A file could not be written (full disk, quota, file size limit, read-only or forbidden folder)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.errno = code


# errno -> what the user can do about it
_STORAGE_FIXES = {
    errno.ENOSPC: "free space on that disk, or write the output to another one",
    errno.EDQUOT: "free space within your quota, or write the output to another disk",
    errno.EFBIG: "raise the file size limit (`ulimit -f`), or write the output where none applies",
    errno.EROFS: "the file system is read-only: write the output to a writable folder",
    errno.EACCES: "make the folder writable for this user (or readable, for an input), or use another one",
    errno.EPERM: "make the folder writable for this user (or readable, for an input), or use another one",
}
# Libraries that do their own I/O report the OS error in text only (safetensors: `(os error 28)`,
# torch: `file write failed`, ...).
_OS_ERROR_TEXT = re.compile(r"os error (\d+)|\[Errno (\d+)\]")


def storage_errno(exc: BaseException) -> int | None:
    """The storage errno (see `_STORAGE_FIXES`) behind `exc` or any exception it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _STORAGE_FIXES:
            return current.errno
        for match in _OS_ERROR_TEXT.finditer(str(current)):
            code = int(match.group(1) or match.group(2))
            if code in _STORAGE_FIXES:
                return code
        current = current.__cause__ or current.__context__
    return None


def storage_error(exc: BaseException, where: str = "") -> StorageError | None:
    """A one-line `StorageError` for a storage fault behind `exc` (None for anything else): the file
    when known (else `where`), the OS's reason and the fix."""
    code = storage_errno(exc)
    if code is None:
        return None
    found: BaseException | None = exc
    filename = None
    while found is not None and filename is None:
        filename = getattr(found, "filename", None)
        found = found.__cause__ or found.__context__
    place = str(filename) if filename else (where or "writing a file")
    return StorageError(code, f"{place}: {os.strerror(code)} (errno {code}); {_STORAGE_FIXES[code]}")


def report_error(exc: SkyworkError) -> int:
    """Print a user error in one line (the traceback too under --debug); return the exit code."""
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exc()
    _close_progress_bars()
    print(f"error: {one_line(str(exc))}", file=sys.stderr, flush=True)
    return exc.exit_code


def _close_progress_bars() -> None:
    """End the progress bars an error interrupted (the trainer's), so the error starts its own line."""
    tqdm_module = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm_module, "tqdm", None), "_instances", None) or ()):
        bar.close()


def one_line(text: str) -> str:
    """`text` with its line breaks (and the indentation after them) folded into spaces."""
    return re.sub(r"\s*\n\s*", " ", text.strip())
